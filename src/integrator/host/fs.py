"""The only code that writes files on a host: compare first, then replace atomically.

Each write is recorded with what was there before, so a failed deploy can put every file
back (or remove what a first deploy created). In dry-run mode the same calls only report
what would change, which is how `deploy --plan` stays honest: it runs the real code path.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import HostError
from .changes import CHANGE, CREATE, REMOVE, UNCHANGED, Change, unified_diff
from .system import System

__all__ = [
    "CHANGE",
    "CREATE",
    "REMOVE",
    "UNCHANGED",
    "Change",
    "FileWriter",
    "remove_tree",
    "replace_link",
    "write_atomic",
]

if TYPE_CHECKING:
    from ..render import RenderedFile


@dataclass(frozen=True)
class _Undo:
    path: PurePosixPath
    previous: bytes | None  # None: the path did not exist
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    is_dir: bool = False
    link: str | None = None  # the path was a symlink to this


@dataclass
class FileWriter:
    """Compare-then-write with an undo journal. `dry_run` reports and touches nothing."""

    system: System
    dry_run: bool = False
    journal: list[_Undo] = field(default_factory=list)
    undo_failures: list[str] = field(default_factory=list)  # paths `undo` could not put back, why

    # --- files -----------------------------------------------------------------------
    def put(
        self,
        path: PurePosixPath,
        content: str | bytes,
        mode: int = 0o644,
        owner: str = "root",
        group: str = "root",
        *,
        secret: bool = False,
    ) -> Change:
        """Make `path` hold `content` with this mode and owner; report create/change/unchanged."""
        data = content.encode() if isinstance(content, str) else content
        real = self.system.path(path)
        old = _read(real)
        uid, gid = _ids(owner, group, strict=not self.dry_run)
        if old is not None and old == data and _meta(real) == (mode, uid, gid):
            return Change(path, UNCHANGED)
        action = CREATE if old is None else CHANGE
        diff = "" if secret else unified_diff(path, old, data)
        if not self.dry_run:
            self.ensure_dir(path.parent)
            self._remember(path, real, old)
            write_atomic(real, data, mode, uid, gid)
        return Change(path, action, diff)

    def put_rendered(self, files: Iterable[RenderedFile]) -> list[Change]:
        """`put` each rendered file with its own mode and owner (deploy, rollback and plan)."""
        return [self.put(f.path, f.content, f.mode, f.owner, f.group) for f in files]

    def remove(self, path: PurePosixPath) -> Change:
        """Remove a file (recorded, so undo brings it back)."""
        real = self.system.path(path)
        old = _read(real)
        if old is None:
            return Change(path, UNCHANGED)
        if not self.dry_run:
            self._remember(path, real, old)
            real.unlink()
        return Change(path, REMOVE)

    def put_link(self, path: PurePosixPath, target: str) -> Change:
        """Make `path` a symlink to `target`, replaced by a rename: a reader (nginx connecting
        through it) finds the old target or the new one, never nothing. Undo puts the old one back."""
        real = self.system.path(path)
        old = os.readlink(real) if real.is_symlink() else None
        if old == target:
            return Change(path, UNCHANGED)
        action = CREATE if old is None and not real.exists() else CHANGE
        if not self.dry_run:
            self.ensure_dir(path.parent)
            self._remember(path, real, _read(real) if old is None else None, link=old)
            replace_link(real, target)
        return Change(path, action, f"-> {target}\n")

    def written(self) -> set[PurePosixPath]:
        """Every path written, removed or linked so far (what undo would put back)."""
        return {e.path for e in self.journal if not e.is_dir}

    # --- directories -------------------------------------------------------------------
    def ensure_dir(
        self, path: PurePosixPath, mode: int = 0o755, owner: str = "root", group: str = "root"
    ) -> Change:
        """Create `path` (and parents) if missing; created directories are undone when empty."""
        real = self.system.path(path)
        if real.is_dir():
            return Change(path, UNCHANGED)
        if not self.dry_run:
            if path.parent != path:
                self.ensure_dir(path.parent)
            real.mkdir(mode=mode)
            os.chmod(real, mode)
            uid, gid = _ids(owner, group, strict=True)
            _chown(real, uid, gid)
            self.journal.append(_Undo(path, None, is_dir=True))
        return Change(path, CREATE)

    # --- undo ----------------------------------------------------------------------------
    def undo(self) -> list[PurePosixPath]:
        """Put back every recorded path, newest first; returns the paths touched.

        Never stops half-way: a path that cannot be put back (a full disk) is noted in
        `undo_failures` and the others are still restored.
        """
        touched: list[PurePosixPath] = []
        for entry in reversed(self.journal):
            try:
                _undo_one(self.system.path(entry.path), entry)
            except OSError as exc:
                self.undo_failures.append(f"{entry.path}: {exc.strerror or exc}")
            touched.append(entry.path)
        self.journal.clear()
        return touched

    def _remember(self, path: PurePosixPath, real: Path, old: bytes | None, link: str | None = None) -> None:
        if any(e.path == path for e in self.journal):
            return  # the first record holds the state before this deploy
        if link is not None:
            self.journal.append(_Undo(path, None, link=link))
        elif old is None:
            self.journal.append(_Undo(path, None))
        else:
            mode, uid, gid = _meta(real)
            self.journal.append(_Undo(path, old, mode, uid, gid))


# --- helpers ----------------------------------------------------------------------------


def _undo_one(real: Path, entry: _Undo) -> None:
    if entry.link is not None:
        replace_link(real, entry.link)
    elif entry.is_dir:
        if real.is_dir() and not any(real.iterdir()):
            real.rmdir()
    elif entry.previous is None:
        if real.exists() or real.is_symlink():
            real.unlink()
    else:
        write_atomic(real, entry.previous, entry.mode, entry.uid, entry.gid)


def write_atomic(real: Path, data: bytes, mode: int, uid: int, gid: int) -> None:
    """Temp file in the same directory, fsync, then rename over: readers see old or new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=real.parent)
    try:
        os.fchmod(fd, mode)
        _fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(real.parent)


def replace_link(real: Path, target: str) -> None:
    """A symlink made beside `real` and renamed over it: atomic for every reader."""
    tmp = real.with_name(f".{real.name}.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, real)
    _fsync_dir(real.parent)


def remove_tree(system: System, path: PurePosixPath) -> bool:
    """Remove a directory tree (a release, a state dir); True if something was there."""
    real = system.path(path)
    if real.is_symlink() or real.is_file():
        real.unlink()
        return True
    if real.is_dir():
        shutil.rmtree(real)
        return True
    return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(real: Path) -> bytes | None:
    try:
        return real.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _meta(real: Path) -> tuple[int, int, int]:
    st = real.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def wanted_ids(owner: str, group: str) -> tuple[int, int]:
    """The ids `put` gives a file of `owner:group` (-1, -1 for a user the deploy creates first)."""
    return _ids(owner, group, strict=False)


def _ids(owner: str, group: str, *, strict: bool) -> tuple[int, int]:
    """Names to ids. When not root, ownership cannot change, so keep our own ids. A plan may
    name a user that the deploy would create first: not `strict`, it compares as unknown (-1)."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        if strict:
            raise HostError(f"no such user or group on this host: {owner}:{group}") from None
        return -1, -1


def _fchown(fd: int, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.fchown(fd, uid, gid)


def _chown(real: Path, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        os.chown(real, uid, gid)
