#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: set up, lint, type-check, then pytest
# (unit, golden, real systemd-analyze/nginx -t checks, and end-to-end deploys on disposable
# real-systemd hosts). Extra arguments go to pytest, e.g. `bash scripts/test.sh -k render`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Tests that need a sandbox host must run, not skip, here: a skipped e2e test proves nothing.
export INTEGRATOR_REQUIRE_SANDBOX=1
rc=0
.venv/bin/python -m pytest -p no:cacheprovider "$@" || rc=$?
if [ "$rc" = 5 ]; then
	echo "test: pytest collected no tests: that is a failure, not a pass" >&2
	exit 1
fi
exit "$rc"
