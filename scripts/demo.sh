#!/usr/bin/env bash
# The main job, end to end, on this machine (Debian 12, root):
#   1. install what is needed (Debian packages, .venv)       scripts/setup.sh
#   2. create a demo Flask service and run its own tests      integrator new
#   3. build its offline bundle and verify it                 integrator bundle / verify
#   4. boot a disposable real-systemd Debian host             integrator sandbox create
#   5. deploy the bundle there (health-gated)                 integrator deploy --host
#   6. fetch https://HOST/ from this machine and say where to look next.
# Re-running replaces the demo service and its host. Work files live in /var/tmp/integrator-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
NAME=${DEMO_NAME:-demo}
WORK=${DEMO_WORK:-/var/tmp/integrator-demo}
I="$REPO/.venv/bin/integrator"
step() { printf '\n== %s\n' "$*"; }

step "1/6 setting up (Debian packages, Python environment)"
bash scripts/setup.sh

step "2/6 creating the service '$NAME' from the template and running its own tests"
rm -rf "${WORK:?}/$NAME" "$WORK/dist"
mkdir -p "$WORK"
"$I" new "$NAME" "$WORK/$NAME"
(cd "$WORK/$NAME" && PYTHONPATH=src "$REPO/.venv/bin/python" -m pytest -q -p no:cacheprovider)

step "3/6 building the offline bundle"
"$I" bundle "$WORK/$NAME" -o "$WORK/dist"
BUNDLE=$(ls "$WORK"/dist/"$NAME"-*.pyz)
"$I" verify "$BUNDLE"

step "4/6 booting a disposable real-systemd host '$NAME'"
"$I" sandbox destroy "$NAME" >/dev/null 2>&1 || true
"$I" sandbox create "$NAME"
ADDR=$("$I" --json sandbox list | "$REPO/.venv/bin/python" -c '
import json, sys
hosts = {h["name"]: h for h in json.load(sys.stdin)["sandboxes"]}
print(hosts[sys.argv[1]]["address"])' "$NAME")

step "5/6 deploying $(basename "$BUNDLE") onto $NAME ($ADDR)"
"$I" deploy "$BUNDLE" --host "$NAME"

step "6/6 asking https://$NAME/ (at $ADDR) from this machine (self-signed certificate, hence -k)"
# By name only: nginx refuses a TLS handshake that names none of its sites (the bare address).
curl -sS -k --max-time 10 -i --resolve "$NAME:443:$ADDR" "https://$NAME/"
echo
# Plain HTTP for the service's own name only redirects (Debian's stock default site keeps
# answering requests for other names, such as the bare address).
echo "http://$ADDR/ with Host: $NAME answers: $(curl -sS --max-time 10 -o /dev/null -H "Host: $NAME" \
	-w '%{http_code} -> %{redirect_url}' "http://$ADDR/")"

I=".venv/bin/integrator"
cat <<EOT

Done: $NAME runs on the sandbox host $NAME at $ADDR, behind nginx with TLS.
Where to look next (from $REPO):
  $I status $NAME --host $NAME     release, units, health
  $I logs $NAME --host $NAME       the journal: the app's and nginx's lines, one JSON line per request
  $I releases $NAME --host $NAME   releases and their outcome
  $I sandbox shell $NAME           a shell on the host: systemctl cat '$NAME-*',
                                   cat /etc/nginx/conf.d/$NAME.conf, ls /opt/$NAME/releases
  $I render $WORK/$NAME   every generated file, from service.toml alone
  $I sandbox destroy $NAME         remove the host; nothing stays behind
EOT
