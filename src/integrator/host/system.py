"""The one place host-side code runs programs.

Every command is an argument list (never a shell string). A `System` also maps host paths
below a root, so the file code can be tested in a temporary directory.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import EnvironmentProblem, HostError

# A predictable PATH: the host's tools, never a caller's venv (bundle runs as root).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Account:
    """A user or a group as the host's name service knows it (`id`: uid or gid)."""

    name: str
    id: int
    gid: int  # a user's primary group; a group's own gid
    comment: str = ""  # a user's GECOS field


@dataclass(frozen=True)
class Proc:
    """What a finished command left: exit status and decoded output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def output(self) -> str:
        """stderr and stdout together, stripped: what a person needs to see on failure."""
        return "\n".join(part.strip() for part in (self.stderr, self.stdout) if part.strip())


class System:
    """This machine, as seen by host code: runs commands and resolves host paths."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def path(self, host_path: PurePosixPath | str) -> Path:
        """The real path of an absolute host path (below `root` in tests)."""
        rel = PurePosixPath(host_path).relative_to("/")
        return self.root / rel

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300,
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        """Run `argv`; with `check`, a non-zero exit is a HostError carrying the program's output.

        In a session of its own: a Ctrl-C at the terminal reaches only us, so the restore it
        starts is not cut short by the same keypress killing its `systemctl` or `nginx -t`
        (an interruption while a command runs kills that command: subprocess.run does)."""
        full_env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "LANG": "C"}
        full_env.update(env or {})
        try:
            cp = subprocess.run(
                list(argv),
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError:
            raise EnvironmentProblem(f"{argv[0]}: not found on this host (install it first)") from None
        except subprocess.TimeoutExpired:
            raise HostError(f"{' '.join(argv)}: no answer after {timeout:.0f} s") from None
        proc = Proc(tuple(argv), cp.returncode, cp.stdout or "", cp.stderr or "")
        if check and not proc.ok:
            raise HostError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.output()}")
        return proc

    def is_root(self) -> bool:
        return os.geteuid() == 0

    def user(self, name: str) -> Account | None:
        """The user `name` (through NSS, so LDAP/sssd users count too), None if there is none."""
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            return None
        return Account(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_gecos)

    def group(self, name: str) -> Account | None:
        try:
            gr = grp.getgrnam(name)
        except KeyError:
            return None
        return Account(gr.gr_name, gr.gr_gid, gr.gr_gid)


def require_root(system: System, verb: str) -> None:
    """Verbs that change the host refuse without root, before taking the lock or changing anything."""
    if not system.is_root():
        raise EnvironmentProblem(f"{verb} must run as root on the host (sudo)")


def proc_stats(proc: Path) -> Iterator[tuple[int, list[str]]]:
    """Each process under `proc` (a /proc) as (pid, the fields of /proc/PID/stat after its command
    name: state, ppid, pgrp, ...). The name may hold spaces and `)`, so split at the last `)`."""
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        yield int(stat.parent.name), fields
