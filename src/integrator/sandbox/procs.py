"""Processes of a host: which pids are really ours, the container's PID 1, running commands.

Pid files can outlive their process and pids get reused, so a pid only counts when its
command line still names the host's directory. PID 1 here may not reap orphans, so a zombie
counts as gone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import HostError
from .paths import INSIDE_PATH, HostPaths, read_text

SUPERVISOR_MODULE = "integrator.sandbox.supervisor"
BASE_ENV = {"PATH": INSIDE_PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root", "LANG": "C.UTF-8"}


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def comm(pid: int) -> str | None:
    return read_text(Path(f"/proc/{pid}/comm"))


def _cmdline_mentions(pid: int, needle: str) -> bool:
    try:
        return needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _own_pid(pid_file: Path, needle: str) -> int | None:
    text = read_text(pid_file)
    if not text or not text.isdigit():
        return None
    pid = int(text)
    return pid if alive(pid) and _cmdline_mentions(pid, needle) else None


def supervisor_pid(paths: HostPaths) -> int | None:
    return _own_pid(paths.supervisor_pid, f"{SUPERVISOR_MODULE}\0{paths.name}\0")


def nspawn_pid(paths: HostPaths) -> int | None:
    return _own_pid(paths.nspawn_pid, f"{paths.root}\0")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def leader_pid(paths: HostPaths) -> int | None:
    """The container's PID 1 as seen from here: the child of systemd-nspawn running systemd."""
    nspawn = nspawn_pid(paths)
    if nspawn is None:
        return None
    for child in children(nspawn):
        if comm(child) == "systemd" and alive(child):
            return child
    return None


def signal_pids(pids: Iterable[int | None], sig: int) -> None:
    for pid in pids:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def wait_gone(pids: Iterable[int | None], timeout: float) -> bool:
    """Wait until none of `pids` is alive; False on timeout."""
    live = [p for p in pids if p]
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in live):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def inside_argv(leader: int, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Run `argv` in every namespace of the container, with a clean environment, in /root.

    `-r -w` take root and cwd from the container's PID 1 (`--wd=PATH` would be opened on this
    machine), and `env -C` then changes to /root inside.
    """
    if not argv:
        raise HostError("no command given")
    merged = {**BASE_ENV, **(env or {})}
    assignments = [f"{k}={v}" for k, v in merged.items()]
    return [
        "nsenter",
        "-t",
        str(leader),
        "-a",
        "-r",
        "-w",
        "/usr/bin/env",
        "-i",
        "-C",
        "/root",
        *assignments,
        *argv,
    ]


def tail(data: bytes | str, lines: int = 20) -> str:
    """The last lines of some output, for an error message."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return "\n".join(text.strip().splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float = 300,
    check: bool = True,
    what: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` capturing output; on timeout kill its whole process group, not just nsenter."""
    label = what or shlex.join(argv)
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException as exc:
        _kill_group(proc)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise HostError(f"{label}: timed out after {timeout:g} s") from None
        raise
    result = subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise HostError(f"{label}: exit code {proc.returncode}\n{tail(err or out)}".rstrip())
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
