"""What this machine needs before a sandbox can exist; each miss names what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import EnvironmentProblem
from .cgroups import hierarchies

INSTALL_HINT = "run scripts/install-sandbox-deps.sh (or: apt-get install --no-install-recommends {pkg})"

# tool -> Debian package that provides it
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "zstd": "zstd",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "tar": "tar",
}
NAMESPACES = ("mnt", "pid", "net", "uts", "ipc")


def missing_tools() -> dict[str, str]:
    """{tool: package} for every tool not on PATH."""
    return {tool: pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}


def has_overlayfs() -> bool:
    """True if the kernel knows overlayfs, loading the module once if needed."""

    def listed() -> bool:
        try:
            return "overlay" in Path("/proc/filesystems").read_text().split()
        except OSError:
            return False

    if listed():
        return True
    if shutil.which("modprobe"):
        subprocess.run(
            ["modprobe", "overlay"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
    return listed()


def ensure_prerequisites() -> None:
    """Raise EnvironmentProblem unless root, the tools, namespaces, cgroups and overlayfs are there."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("sandbox hosts need root (systemd-nspawn, mounts, veth): run with sudo")
    missing = missing_tools()
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise EnvironmentProblem(f"missing {', '.join(sorted(missing))}: " + INSTALL_HINT.format(pkg=pkgs))
    absent = [ns for ns in NAMESPACES if not Path(f"/proc/self/ns/{ns}").exists()]
    if absent:
        raise EnvironmentProblem(f"the kernel lacks {', '.join(absent)} namespaces needed by systemd-nspawn")
    if not hierarchies():
        raise EnvironmentProblem("no cgroup2 or name=systemd hierarchy mounted under /sys/fs/cgroup")
    if not has_overlayfs():
        raise EnvironmentProblem("the kernel has no overlayfs (modprobe overlay failed)")
