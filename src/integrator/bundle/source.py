"""Where a bundle comes from: the git commit, whether it had local changes, and its timestamp.

The timestamp is the *source* time, never the wall clock, so two builds of one tree are
byte-identical: SOURCE_DATE_EPOCH (the reproducible-builds convention) wins, then the
commit time of HEAD, then 1980-01-01 (the earliest time a zip entry can carry).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z
_ZIP_LAST = 4354819199  # 2107-12-31T23:59:59Z, the last time a zip entry can carry


@dataclass(frozen=True)
class SourceInfo:
    commit: str | None  # HEAD, when the service is in a git checkout
    dirty: bool  # uncommitted changes below the service directory
    epoch: int  # seconds since 1970, UTC: the time every timestamp in the bundle uses

    @property
    def built_at(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.epoch))


def _git(service_dir: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    proc = subprocess.run(
        [git, "-C", str(service_dir), *args], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def source_epoch(commit_time: int | None) -> int:
    """SOURCE_DATE_EPOCH, else the commit time, else 1980; clamped to what zip can store."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            raise UsageError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {raw!r}")
        epoch = int(raw)
    else:
        epoch = commit_time if commit_time is not None else ZIP_EPOCH
    return min(max(epoch, ZIP_EPOCH), _ZIP_LAST)


def source_info(service_dir: Path, output: Path | None = None) -> SourceInfo:
    """Commit, dirty flag and time of `service_dir`; `output` (where bundles go) never counts
    as a change, or a second build inside an untracked dist/ would differ from the first."""
    commit = _git(service_dir, "rev-parse", "--verify", "--quiet", "HEAD")
    if not commit:
        return SourceInfo(commit=None, dirty=False, epoch=source_epoch(None))
    commit_time = _git(service_dir, "log", "-1", "--format=%ct", "HEAD")
    pathspec = ["."]
    if output is not None and output.resolve().is_relative_to(service_dir.resolve()):
        pathspec.append(f":(exclude){output.resolve().relative_to(service_dir.resolve()).as_posix()}")
    status = _git(service_dir, "status", "--porcelain", "--untracked-files=normal", "--", *pathspec)
    return SourceInfo(
        commit=commit,
        dirty=bool(status),
        epoch=source_epoch(int(commit_time) if commit_time and commit_time.isdigit() else None),
    )
