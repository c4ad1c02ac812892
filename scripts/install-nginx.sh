#!/bin/bash
# Install nginx on this machine (Debian/Ubuntu, run as root) so tests can run `nginx -t` on
# rendered sites. nginx is NEVER started here: while apt runs, /usr/sbin/policy-rc.d answers 101
# ("action forbidden"), which invoke-rc.d / deb-systemd-invoke obey; a policy-rc.d that was
# already there is put back afterwards, byte for byte.
# Idempotent: does nothing when /usr/sbin/nginx exists.
set -euo pipefail

log() { echo "install-nginx: $*" >&2; }
die() { log "$*"; exit 1; }

if [ -x /usr/sbin/nginx ]; then
	log "already installed ($(/usr/sbin/nginx -v 2>&1))"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root"
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu)"
export DEBIAN_FRONTEND=noninteractive

POLICY=/usr/sbin/policy-rc.d
BACKUP=
if [ -e "$POLICY" ]; then
	BACKUP=$(mktemp /usr/sbin/.policy-rc.d.integrator.XXXXXX)
	cp -p "$POLICY" "$BACKUP"
fi
restore_policy() {
	if [ -n "$BACKUP" ]; then
		mv -f "$BACKUP" "$POLICY"
	else
		rm -f "$POLICY"
	fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# integrator install-nginx.sh: do not start services while installing\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

out=$(apt-cache policy nginx 2>/dev/null)
if ! grep -q 'Candidate: [^(]' <<<"$out"; then
	log "no candidate for nginx yet: apt-get update"
	apt-get update -qq
fi
log "installing nginx (not started)"
apt-get install -y -qq --no-install-recommends nginx >/dev/null
[ -x /usr/sbin/nginx ] || die "apt-get finished but /usr/sbin/nginx is missing"
log "done ($(/usr/sbin/nginx -v 2>&1))"
