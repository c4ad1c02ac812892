#!/bin/bash
# Install what `integrator sandbox` needs on this machine (Debian/Ubuntu, run as root).
# Idempotent and non-interactive: does nothing when everything is present, runs `apt-get update`
# only when a package (or the pinned systemd-container version) has no install candidate yet.
# systemd-container is pinned to the installed systemd version so this machine's own systemd is
# never upgraded as a side effect; if that version is not available the script stops instead.
set -euo pipefail

log() { echo "install-sandbox-deps: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu)"
export DEBIAN_FRONTEND=noninteractive

SYSTEMD_VERSION=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
PLAIN=(mmdebstrap zstd iproute2 util-linux tar mount)

installed() {  # installed PKG [VERSION]
	local status version
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || return 1
	[ -z "${2:-}" ] && return 0
	version=$(dpkg-query -W -f='${Version}' "$1")
	[ "$version" = "$2" ]
}

wanted() {  # prints the apt arguments still needed, one per line
	local p
	if [ -n "$SYSTEMD_VERSION" ]; then
		installed systemd-container "$SYSTEMD_VERSION" || echo "systemd-container=$SYSTEMD_VERSION"
	else
		installed systemd-container || echo systemd-container
	fi
	for p in "${PLAIN[@]}"; do installed "$p" || echo "$p"; done
}

available() {  # available PKG[=VERSION]: apt knows an install candidate for it
	# (output captured first: `grep -q` closing a pipe early would fail the pipeline under pipefail)
	local name=${1%%=*} version= out
	[ "$name" != "$1" ] && version=${1#*=}
	if [ -n "$version" ]; then
		out=$(apt-cache madison "$name" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}')
		grep -qxF "$version" <<<"$out"
	else
		out=$(apt-cache policy "$name" 2>/dev/null)
		grep -q 'Candidate: [^(]' <<<"$out"
	fi
}

mapfile -t NEED < <(wanted)
if [ "${#NEED[@]}" = 0 ]; then
	log "all present (systemd-container ${SYSTEMD_VERSION:-any}, ${PLAIN[*]})"
	exit 0
fi

for p in "${NEED[@]}"; do
	if ! available "$p"; then
		log "no candidate for $p yet: apt-get update"
		apt-get update -qq
		break
	fi
done
for p in "${NEED[@]}"; do
	available "$p" || die "apt has no candidate for $p (check /etc/apt/sources.list*; the pin keeps systemd unchanged)"
done

# Refuse anything that would replace this machine's systemd.
SIMULATED=$(apt-get -s install -y --no-install-recommends "${NEED[@]}")
if grep -E '^Inst (systemd|libsystemd[^ ]*|udev) ' <<<"$SIMULATED"; then
	die "installing ${NEED[*]} would upgrade systemd itself; refusing"
fi
log "installing: ${NEED[*]}"
apt-get install -y -qq --no-install-recommends "${NEED[@]}"
log "done"
