"""The overlay mount of a host's root, and making sure nothing stays mounted under its directory."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ..errors import HostError
from .procs import run

ESCAPE = re.compile(r"\\([0-7]{3})")


def mount_points(mountinfo: str) -> list[str]:
    """Mount points listed in /proc/self/mountinfo text (octal escapes such as \\040 decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory`, deepest first (the order to unmount them)."""
    prefix = str(directory).rstrip("/")
    found = {
        p
        for p in mount_points(Path("/proc/self/mountinfo").read_text())
        if p == prefix or p.startswith(prefix + "/")
    }
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """Copy-on-write root: the read-only base below, this host's changes in `upper`."""
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}",
            str(target),
        ],
        timeout=30,
        what=f"mounting the overlay on {target}",
    )


def unmount_under(directory: Path, timeout: float = 10) -> None:
    """Unmount everything at or below `directory`, lazily once `timeout` passed; raise if any is left."""
    deadline = time.monotonic() + timeout
    points = mounts_under(directory)
    while points:
        lazy = time.monotonic() > deadline
        if time.monotonic() > deadline + 2:
            raise HostError(f"still mounted under {directory}: {', '.join(points)}")
        for point in points:
            run(["umount", *(["-l"] if lazy else []), point], check=False, timeout=30)
        points = mounts_under(directory)
        if points:
            time.sleep(0.1)
