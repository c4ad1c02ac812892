"""Releases: sortable ids, the per-release record, cleanup that never loses the last good one,
and the deploy lock.

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
from typing import IO, Any

from ..errors import HostError
from ..layout import Layout
from .fs import FileWriter
from .system import System

OK, FAILED, ROLLED_BACK, DEPLOYING = "ok", "failed", "rolled_back", "deploying"


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
        r
        for r in records
        if r.outcome in (OK, ROLLED_BACK) and r.id != current and (current is None or r.id < current)
    ]
    return good[-1] if good else None


def to_remove(
    existing: Sequence[str], records: Sequence[ReleaseRecord], current: str | None, keep: int
) -> list[str]:
    """Release dirs to delete: all but the newest `keep`, never `current` nor the last good one."""
    protected = {current, getattr(last_good(records), "id", None)}
    ordered = sorted(existing)
    doomed = ordered[: max(0, len(ordered) - keep)]
    return [rid for rid in doomed if rid not in protected]


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


class DeployLock:
    """`flock` on `layout.lock_file`: two deploys (or a deploy and a rollback) never interleave.

    The kernel drops the lock when the process dies, so a crashed deploy never blocks the next.
    """

    def __init__(self, system: System, layout: Layout) -> None:
        self.path = system.path(layout.lock_file)
        self.name = layout.name
        self._fh: IO[str] | None = None

    def __enter__(self) -> DeployLock:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fh)
            fh.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise HostError(f"another deploy of {self.name} is running (pid {holder})") from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the flock
            self._fh = None


def _read_pid(fh: IO[str]) -> str:
    fh.seek(0)
    return fh.read().strip() or "?"
