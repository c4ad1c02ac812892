"""Releases: sortable ids, the per-release record, cleanup that never loses a rollback target,
and the deploy lock (which also says which step the deploy holding it is at).

The record (`layout.releases_record`, JSON) is what `list`, `rollback` and cleanup trust:
which release succeeded, which failed, who deployed it and from which bundle.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import HostError, IntegratorError
from ..layout import Layout
from .fs import FileWriter
from .system import System

OK, FAILED, ROLLED_BACK, DEPLOYING = "ok", "failed", "rolled_back", "deploying"
INTERRUPTED = "interrupted"  # stopped by a signal (restored), or found dead and repaired later
GOOD = (OK, ROLLED_BACK)  # a release that served and passed its health check: a rollback target
DONE = "done"  # the step a lock holder leaves when it ended normally


@dataclass(frozen=True)
class ReleaseRecord:
    """One release as deployed: when, by whom, from which bundle, and how it ended."""

    id: str
    deployed_at: str
    by: str
    bundle_sha256: str
    version: str
    python: str
    outcome: str
    message: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def new_release_id(bundle_sha256: str, now: float | None = None) -> str:
    """`20260102T030405Z-1a2b3c4d`: sorts by time, names the bundle it came from."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{bundle_sha256[:8]}"


def deployed_by() -> str:
    """The person behind sudo if any, else the user running us."""
    return (
        os.environ.get("SUDO_USER") or os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
    )


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- the record -----------------------------------------------------------------------------


def load_records(system: System, layout: Layout) -> list[ReleaseRecord]:
    """All releases ever recorded for the service, oldest first; a missing file is none."""
    real = system.path(layout.releases_record)
    try:
        raw = json.loads(real.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise HostError(f"{layout.releases_record}: unreadable release record ({exc})") from None
    return sorted((ReleaseRecord.from_dict(r) for r in raw.get("releases", [])), key=lambda r: r.id)


def save_records(writer: FileWriter, layout: Layout, records: Sequence[ReleaseRecord]) -> None:
    payload = {"service": layout.name, "releases": [asdict(r) for r in sorted(records, key=lambda r: r.id)]}
    writer.put(layout.releases_record, json.dumps(payload, indent=2) + "\n", 0o600)


def upsert(records: Sequence[ReleaseRecord], record: ReleaseRecord) -> list[ReleaseRecord]:
    return [r for r in records if r.id != record.id] + [record]


def set_outcome(
    records: Sequence[ReleaseRecord], release_id: str, outcome: str, message: str = ""
) -> list[ReleaseRecord]:
    return [replace(r, outcome=outcome, message=message) if r.id == release_id else r for r in records]


def find(records: Sequence[ReleaseRecord], release_id: str | None) -> ReleaseRecord | None:
    return next((r for r in records if r.id == release_id), None)


def last_good(records: Sequence[ReleaseRecord], exclude: str | None = None) -> ReleaseRecord | None:
    """The newest release that ended ok (optionally other than `exclude`)."""
    good = [r for r in records if r.outcome == OK and r.id != exclude]
    return good[-1] if good else None


def previous_good(records: Sequence[ReleaseRecord], current: str | None) -> ReleaseRecord | None:
    """The newest good release older than `current`: what `rollback` goes back to."""
    good = [
        r for r in records if r.outcome in GOOD and r.id != current and (current is None or r.id < current)
    ]
    return good[-1] if good else None


def rollback_target(
    name: str, records: Sequence[ReleaseRecord], current: str | None, to: str | None, on_disk: Sequence[str]
) -> str:
    """Pure: where `rollback` goes: `--to ID` (any recorded release, current included), else the
    newest good release before `current`; it must still be on disk (HostError naming why not)."""
    target = find(records, to) if to else previous_good(records, current)
    if target is None:
        raise HostError(f"no release {to!r} of {name}" if to else f"{name} has no earlier good release")
    if target.id not in on_disk:
        raise HostError(f"release {target.id} of {name} was removed from the host")
    return target.id


def to_remove(
    existing: Sequence[str], records: Sequence[ReleaseRecord], current: str | None, keep: int
) -> list[str]:
    """Release dirs to delete after a successful deploy (pure: the same facts, the same answer).

    Kept: `current`; the rollback target (the newest good release before `current`); the newest
    `keep` good releases; and the newest `keep` directories whatever their outcome (recent
    failures, for inspection). Failed, interrupted or unrecorded releases never push a good one
    out, and `rollback` always has somewhere to go.
    """
    ordered = sorted(existing)
    on_disk = set(ordered)
    good = [r.id for r in sorted(records, key=lambda r: r.id) if r.outcome in GOOD and r.id in on_disk]
    target = previous_good([r for r in records if r.id in on_disk], current)
    kept = {current, getattr(target, "id", None), *good[-keep:], *ordered[-keep:]} if keep > 0 else {current}
    return [rid for rid in ordered if rid not in kept]


def prune_records(
    records: Sequence[ReleaseRecord], remaining: Sequence[str], keep_history: int = 50
) -> list[ReleaseRecord]:
    """Keep records of releases still on disk plus recent history (failures stay visible)."""
    on_disk = set(remaining)
    recent = {r.id for r in list(records)[-keep_history:]}
    return [r for r in records if r.id in on_disk or r.id in recent]


def release_ids(system: System, layout: Layout) -> list[str]:
    real = system.path(layout.releases)
    if not real.is_dir():
        return []
    return sorted(p.name for p in real.iterdir() if p.is_dir() and not p.name.startswith("."))


# --- the lock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockNote:
    """What the lock file says: the pid of its (last) holder and the step it was at."""

    pid: int
    step: str

    @property
    def finished(self) -> bool:
        """The holder ended normally (or was an integrator that did not record steps)."""
        return self.step in ("", DONE)

    def text(self) -> str:
        return f"{self.pid} {self.step}\n"


def parse_lock_note(text: str) -> LockNote | None:
    """`PID STEP` (first line); a bare PID (older integrator) is a holder that finished."""
    words = (text.splitlines() or [""])[0].split()
    if not words or not words[0].isdigit():
        return None
    return LockNote(int(words[0]), words[1] if len(words) > 1 else "")


def flock_held(proc_locks: str, inode: int) -> bool:
    """Whether /proc/locks lists a granted FLOCK on inode `inode` (lines `N: FLOCK ADVISORY
    WRITE PID MAJ:MIN:INODE 0 EOF`; waiters are marked `->`). Read-only: unlike a trial
    flock, asking never makes a starting deploy fail."""
    for line in proc_locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue  # POSIX locks, waiters (`N: -> FLOCK ...`)
        if fields[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def lock_state(system: System, layout: Layout) -> tuple[LockNote | None, bool]:
    """The lock file's note and whether a live process holds the lock now (for `status`)."""
    real = system.path(layout.lock_file)
    try:
        note, inode = parse_lock_note(real.read_text(encoding="utf-8", errors="replace")), real.stat().st_ino
    except FileNotFoundError:
        return None, False
    try:
        locks = Path("/proc/locks").read_text(encoding="utf-8", errors="replace")
    except OSError:
        locks = ""
    return note, flock_held(locks, inode)


class DeployLock:
    """`flock` on `layout.lock_file`: two deploys (or a deploy and a rollback) never interleave.

    The kernel drops the lock when the process dies, so a crashed deploy never blocks the next.
    The file holds `PID STEP`, rewritten at each step (`status` shows it) and `PID done` at a
    normal end; a step other than `done` found by the next holder (`left`) means the previous
    one died part-way, and its host must be checked and repaired (host/repair.py).
    """

    def __init__(self, system: System, layout: Layout) -> None:
        self.path = system.path(layout.lock_file)
        self.name = layout.name
        self.left: LockNote | None = None
        self.current_step = ""
        self._fd: int | None = None

    def __enter__(self) -> DeployLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = parse_lock_note(_read_fd(fd))
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                doing = f"pid {holder.pid}, step {holder.step or '?'}" if holder else "pid ?"
                raise HostError(f"another deploy of {self.name} is running ({doing})") from None
            raise
        left = parse_lock_note(_read_fd(fd))
        self.left = left if left is not None and not left.finished else None
        self._fd = fd
        self.step("locked")
        return self

    def step(self, name: str) -> None:
        """Record the step now running (best effort: a full disk must not stop a restore)."""
        self.current_step = name
        if self._fd is None:
            return
        data = LockNote(os.getpid(), name).text().encode()
        try:  # new text first, then cut: a reader never sees an empty file
            os.pwrite(self._fd, data, 0)
            os.ftruncate(self._fd, len(data))
        except OSError:
            pass

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._fd is None:
            return
        if exc_type is None or issubclass(exc_type, IntegratorError):
            self.step(DONE)  # anything else (a signal, a bug) leaves its step: the next holder checks
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def _read_fd(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
