#!/usr/bin/env bash
# Install what integrator's demo and tests need on a Debian 12 machine (run as root), idempotently:
#   - Debian packages for disposable real-systemd test hosts (systemd-container pinned to the
#     installed systemd, mmdebstrap, zstd, iproute2), nginx (for `nginx -t`; never started here)
#     and wrk (the benchmarks' load generator),
#   - a Python virtual environment in .venv with integrator and its dev tools.
# Safe to re-run: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "setup: run as root (apt-get and systemd-nspawn need it)" >&2
	exit 3
fi
bash scripts/install-sandbox-deps.sh
bash scripts/install-nginx.sh
need=()
# pebble (a test-only ACME server) and certbot: the ACME renewal e2e (tests/test_day2_e2e.py).
# wrk (a compiled HTTP load generator): bench/drain.py, bench/throughput.py and bench/scale.py.
for pkg in openssl openssh-client git python3-venv pebble certbot wrk; do
	dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
	"$PY" -m venv .venv
fi
stamp=.venv/.integrator-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
	.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), $(.venv/bin/integrator --version))" >&2
