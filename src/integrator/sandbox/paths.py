"""Where sandbox state lives on this machine, and what a sandbox may be called.

Everything sits under /var/cache/integrator (the cached base) and /var/lib/integrator/sandboxes
(one directory per host), never under /tmp: the booted systemd runs its own tmpfiles, and a host
must never be able to reach this machine's temporary files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

CACHE_DIR = Path("/var/cache/integrator")
STATE_DIR = Path("/var/lib/integrator/sandboxes")
CGROUP_GROUP = "integrator-sandbox"  # parent cgroup of every host, in each hierarchy
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The veth on this side is "ve-NAME" and interface names are at most 15 characters.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,10}\Z")  # \Z: `$` would let a final newline through


def validate_name(name: str) -> str:
    """Return `name` if it can be a sandbox name, else raise UsageError saying why."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(
            f"bad sandbox name {name!r}: use 1-11 characters a-z, 0-9 and '-', starting with a letter "
            "or digit (it becomes the network interface ve-NAME, limited to 15 characters)"
        )
    return name


@dataclass(frozen=True)
class HostPaths:
    """The files of one host: the overlay layers, pid files, console log, network slot."""

    name: str
    dir: Path

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def root(self) -> Path:
        """The overlay mount the container boots from."""
        return self.dir / "root"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def supervisor_pid(self) -> Path:
        return self.dir / "supervisor.pid"

    @property
    def nspawn_pid(self) -> Path:
        return self.dir / "nspawn.pid"

    @property
    def net_index(self) -> Path:
        """N of the host's 10.213.N.0/30."""
        return self.dir / "net-index"

    @property
    def base(self) -> Path:
        """Records which base directory is the lowerdir, so an old base is not deleted while used."""
        return self.dir / "base"

    @property
    def stopping(self) -> Path:
        """Present while destroying: the supervisor must not restart nspawn any more."""
        return self.dir / "stopping"

    @property
    def exit_code(self) -> Path:
        return self.dir / "exit-code"


def host_paths(name: str) -> HostPaths:
    """Paths of host `name` (validated, so a name can never escape STATE_DIR)."""
    return HostPaths(validate_name(name), STATE_DIR / name)


def host_names() -> list[str]:
    """Names of every host directory, running or not, sorted."""
    if not STATE_DIR.is_dir():
        return []
    return sorted(p.name for p in STATE_DIR.iterdir() if p.is_dir() and NAME_RE.match(p.name))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if needed) so concurrent callers take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` so readers never see a half-written file (pid files are polled)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_text(path: Path) -> str | None:
    """The stripped content of `path`, or None if it does not exist."""
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
