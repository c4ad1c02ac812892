#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: set up, lint, type-check, then pytest
# (unit, golden, real systemd-analyze/nginx -t checks, and end-to-end deploys on disposable
# real-systemd hosts). Extra arguments go to pytest, e.g. `bash scripts/test.sh -k render`.
#
# `bash scripts/test.sh --fast` is the edit-test loop: lint, types and every test that needs neither
# root, nor the network, nor a sandbox host (markers `sandbox`, `network`, `root`), with pip kept off
# the index so a test that would reach it fails instead of waiting. It installs nothing: run the full
# command (or `bash scripts/setup.sh`) once as root first.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = "--fast" ]; then
	fast=1
	shift
fi
if [ "$fast" = 1 ]; then
	if [ ! -x .venv/bin/pytest ]; then
		echo "test: no .venv yet: run 'bash scripts/setup.sh' once as root, then 'bash scripts/test.sh --fast'" >&2
		exit 3
	fi
else
	bash scripts/setup.sh
fi

# ansible-lint (integrator.fleet: profile production, offline, nothing skipped; the collection's
# .ansible-lint) takes ~10 s of one core: it runs beside ruff, mypy and ansible-test (one core each)
venv=$PWD/.venv
lint_log=$(mktemp)
(cd src/integrator/fleet/ansible_collections/integrator/fleet && PATH="$venv/bin:$PATH" ansible-lint --nocolor) \
	>"$lint_log" 2>&1 &
lint_pid=$!
trap 'kill "$lint_pid" 2>/dev/null || true; rm -f "$lint_log"' EXIT
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== ansible-test sanity (integrator.fleet: the tests that need no container, network or extra venv)"
py=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
(cd src/integrator/fleet/ansible_collections/integrator/fleet &&
	../../../../../../.venv/bin/ansible-test sanity --local --python "$py" --test line-endings \
		--test no-smart-quotes --test symlinks --test shebang --test no-illegal-filenames \
		--test empty-init --test ignores &&
	rm -rf tests/output && rmdir tests)
echo "== ansible-lint"
lint_rc=0
wait "$lint_pid" || lint_rc=$?
cat "$lint_log"
if [ "$lint_rc" != 0 ]; then
	echo "test: ansible-lint failed (exit $lint_rc)" >&2
	exit 1
fi
echo "== pytest"
rc=0
if [ "$fast" = 1 ]; then
	# -n auto: one pytest worker per core (pytest-xdist); these tests share no host, port or file
	PIP_NO_INDEX=1 .venv/bin/python -m pytest -p no:cacheprovider -n auto \
		-m "not sandbox and not network and not root" "$@" || rc=$?
else
	# Tests that need a sandbox host must run, not skip, here: a skipped e2e test proves nothing.
	export INTEGRATOR_REQUIRE_SANDBOX=1
	.venv/bin/python -m pytest -p no:cacheprovider "$@" || rc=$?
fi
if [ "$rc" = 5 ]; then
	echo "test: pytest collected no tests: that is a failure, not a pass" >&2
	exit 1
fi
exit "$rc"
