"""One cgroup per host in each hierarchy systemd uses.

Without a host systemd, `--keep-unit` makes nspawn use its caller's cgroup; from a shared
cgroup every container would land in the same `payload/` (two hosts would then share
`system.slice/nginx.service`, and `systemctl kill` fails with "Input/output error").
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ..errors import EnvironmentProblem, HostError
from .paths import CGROUP_GROUP

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """cgroup2 (pure v2 at the root, or hybrid at unified/) and the v1 name=systemd hierarchy."""
    if (root / "cgroup.controllers").is_file():
        return [root]
    return [h for h in (root / "unified", root / "systemd") if (h / "cgroup.procs").is_file()]


def host_cgroups(name: str) -> list[Path]:
    return [h / CGROUP_GROUP / name for h in hierarchies()]


def create(name: str) -> list[Path]:
    """Make the host's cgroups; they must be new (a leftover one would still hold processes)."""
    dirs = host_cgroups(name)
    if not dirs:
        raise EnvironmentProblem("no cgroup2 or name=systemd hierarchy under /sys/fs/cgroup")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def join(dirs: list[Path], pid: int) -> None:
    """Move `pid` into every one of `dirs` (called by the supervisor for itself)."""
    for d in dirs:
        (d / "cgroup.procs").write_text(f"{pid}\n")


def pids(name: str) -> set[int]:
    """Every process still in any of the host's cgroups, sub-cgroups included."""
    found: set[int] = set()
    for top in host_cgroups(name):
        for dirpath, _dirs, _files in os.walk(top):
            try:
                found |= {int(p) for p in Path(dirpath, "cgroup.procs").read_text().split()}
            except (FileNotFoundError, OSError):
                continue
    return found


def remove(name: str, timeout: float = 5.0) -> None:
    """Remove the host's cgroup trees bottom-up; retries while the kernel still frees them."""
    deadline = time.monotonic() + timeout
    for top in host_cgroups(name):
        while top.exists():
            try:
                _rmdir_tree(top)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise HostError(f"cannot remove cgroup {top}: {exc}") from None
                time.sleep(0.05)


def _rmdir_tree(top: Path) -> None:
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(dirpath)
