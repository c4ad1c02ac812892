"""Facts: what a host is like, read before anything changes it.

Each probe is an argument list plus a pure parser of its output (tested without a host), in
the manner of pyinfra facts. `probe_host` gathers the ones a deploy needs, once.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import EnvironmentProblem, HostError
from .system import System

NGINX_VERSION_ARGV = ("nginx", "-v")
SYSTEMD_VERSION_ARGV = ("systemctl", "--version")
PYTHON_PROBE = "import platform, sys; print('%d.%d.%d' % sys.version_info[:3], platform.machine())"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"  # present while SELinux is on; 1 when enforcing
UNIT_PROPERTIES = ("LoadState", "ActiveState", "SubState", "MainPID", "NRestarts", "UnitFileState")
# Where the system's python3 lives; the venvs are built with it, not with whatever runs us.
PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")


@dataclass(frozen=True)
class HostFacts:
    """What a deploy needs to know about the host before it changes anything."""

    distro: str  # "debian" | "rhel"
    pretty_name: str
    hostname: str
    nginx_version: tuple[int, int, int]
    python: str  # path of the system python3
    python_version: tuple[int, int, int]
    machine: str
    systemd_version: int
    selinux: bool

    @property
    def python_short(self) -> str:
        return f"{self.python_version[0]}.{self.python_version[1]}"


# --- pure parsers -------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    """`KEY=value` lines of /etc/os-release, quotes removed."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def distro_family(os_release: Mapping[str, str]) -> str:
    """debian or rhel, from ID and ID_LIKE; anything else is not supported (said plainly)."""
    ids = [os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()]
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian"
    if any(i in ("rhel", "fedora", "centos", "rocky", "almalinux") for i in ids):
        return "rhel"
    name = os_release.get("PRETTY_NAME") or os_release.get("ID") or "unknown"
    raise EnvironmentProblem(
        f"unsupported host distribution {name!r}: integrator knows Debian- and RHEL-like hosts"
    )


def parse_nginx_version(text: str) -> tuple[int, int, int]:
    """`nginx version: nginx/1.22.1` (printed on stderr) -> (1, 22, 1)."""
    m = re.search(r"nginx/(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        raise HostError(f"cannot read the nginx version from {text.strip()!r}")
    major, minor, patch = (int(g or 0) for g in m.groups())
    return major, minor, patch


def parse_systemd_version(text: str) -> int:
    """`systemd 252 (252.22-1~deb12u1)` -> 252."""
    m = re.match(r"\s*systemd\s+(\d+)", text)
    if not m:
        raise HostError(f"cannot read the systemd version from {text.strip()[:80]!r}")
    return int(m.group(1))


def parse_python_probe(text: str) -> tuple[tuple[int, int, int], str]:
    """`3.11.2 x86_64` -> ((3, 11, 2), 'x86_64')."""
    version, _, machine = text.strip().partition(" ")
    parts = [int(p) for p in version.split(".")]
    if len(parts) != 3 or not machine:
        raise HostError(f"unexpected python3 probe output {text.strip()!r}")
    return (parts[0], parts[1], parts[2]), machine


def parse_properties(text: str) -> dict[str, str]:
    """`systemctl show -p A,B` output: `A=x` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def parse_pyvenv_cfg(text: str) -> dict[str, str]:
    """pyvenv.cfg (`key = value`), which records the Python a venv was built with."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_selinux_enforce(text: str | None) -> bool:
    """/sys/fs/selinux/enforce holds 1 (enforcing) or 0; absent means no SELinux."""
    return (text or "").strip() == "1"


# --- probes ---------------------------------------------------------------------------------


def probe_host(system: System) -> HostFacts:
    """Read the facts a deploy needs; a missing tool is an EnvironmentProblem naming it."""
    osr = parse_os_release(_read(system, "/etc/os-release") or "")
    python = system_python(system)
    version, machine = parse_python_probe(system.run([python, "-c", PYTHON_PROBE]).stdout)
    return HostFacts(
        distro=distro_family(osr),
        pretty_name=osr.get("PRETTY_NAME", "?"),
        hostname=platform.node() or "localhost",
        nginx_version=nginx_version(system),
        python=python,
        python_version=version,
        machine=machine,
        systemd_version=parse_systemd_version(system.run(list(SYSTEMD_VERSION_ARGV)).stdout),
        selinux=parse_selinux_enforce(_read(system, SELINUX_ENFORCE)),
    )


def host_distro(system: System) -> str:
    """debian or rhel, from /etc/os-release alone (for commands that need only the layout)."""
    return distro_family(parse_os_release(_read(system, "/etc/os-release") or ""))


def nginx_version(system: System) -> tuple[int, int, int]:
    proc = system.run(list(NGINX_VERSION_ARGV))
    return parse_nginx_version(proc.stderr + proc.stdout)


def system_python(system: System) -> str:
    for candidate in PYTHON_CANDIDATES:
        if os.access(system.path(candidate), os.X_OK):
            return candidate
    raise EnvironmentProblem("no python3 on this host: install python3 and python3-venv")


def systemd_booted(system: System) -> bool:
    """sd_booted(3): systemd is PID 1 exactly when /run/systemd/system is a directory."""
    return system.path("/run/systemd/system").is_dir()


def unit_state(system: System, unit: str) -> dict[str, str]:
    """LoadState, ActiveState, SubState, MainPID, NRestarts, UnitFileState of one unit."""
    proc = system.run(["systemctl", "show", "-p", ",".join(UNIT_PROPERTIES), unit], check=False)
    return parse_properties(proc.stdout)


def current_release(system: System, current: PurePosixPath) -> str | None:
    """The release id `current` points at, or None before the first good deploy."""
    real = system.path(current)
    if not real.is_symlink():
        return None
    return PurePosixPath(os.readlink(real)).name


def venv_python(system: System, venv: PurePosixPath) -> tuple[int, ...] | None:
    """The Python version a venv was built with (from pyvenv.cfg), None if it has none."""
    cfg = parse_pyvenv_cfg(_read(system, str(venv / "pyvenv.cfg")) or "")
    raw = cfg.get("version") or cfg.get("version_info") or ""
    try:
        return tuple(int(p) for p in raw.split(".")[:3]) if raw else None
    except ValueError:
        return None


def venv_usable(system: System, venv: PurePosixPath, facts: HostFacts) -> str | None:
    """Why a release's venv no longer fits the host's Python (None if it does)."""
    runs = os.access(system.path(venv / "bin" / "python"), os.X_OK)
    return venv_stale(venv, venv_python(system, venv), runs, facts)


def venv_stale(
    venv: PurePosixPath, built: tuple[int, ...] | None, runs: bool, facts: HostFacts
) -> str | None:
    """Pure: why a venv built for `built` (pyvenv.cfg) whose bin/python `runs` (is executable)
    no longer fits the host's Python; None if it does."""
    if built is None:
        return f"{venv} has no pyvenv.cfg"
    if tuple(built[:2]) != facts.python_version[:2]:
        have = ".".join(map(str, built))
        return f"{venv} was built for Python {have}, the host now has {facts.python_short}"
    if not runs:
        return f"{venv}/bin/python is missing or broken (the host's Python changed)"
    return None


def _read(system: System, path: str) -> str | None:
    try:
        return system.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
