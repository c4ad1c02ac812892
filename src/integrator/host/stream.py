"""Run a command that streams until stopped (`logs --follow`), copying its output to ours.

Host-side: `logs -f` on this machine streams `journalctl -f` with it, and so does the operator's
`integrator logs -f --ssh/--host` with the target's command line (targets/commands.py).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import EnvironmentProblem
from .system import proc_stats


class _Stop(Exception):
    """SIGTERM or SIGHUP while following: end like Ctrl-C does."""


def stream(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run a command that streams until stopped (`journalctl -f`), copying its output to ours.

    Ctrl-C, SIGTERM and SIGHUP are the normal end (0); otherwise the command's own exit code.
    It runs in a process group of its own, signalled and waited for as a whole, so nothing it
    started outlives us (inside a sandbox, nsenter's child). Its output reaches us through a
    pipe, so even if we are killed outright the pipe closes and `journalctl -f` ends.
    """
    try:
        child = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, start_new_session=True
        )
    except FileNotFoundError:
        raise EnvironmentProblem(f"{argv[0]}: not found on this machine") from None
    assert child.stdout is not None
    previous = _handle_stop_signals()
    try:
        _copy(child.stdout, sys.stdout.buffer)
        stopped = False
    except (_Stop, KeyboardInterrupt, BrokenPipeError):
        stopped = True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _end_group(child)
    return 0 if stopped else child.returncode


def _handle_stop_signals() -> dict[int, Any]:
    def stop(signum: int, _frame: object) -> None:
        raise _Stop(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGHUP)}


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    """Copy until `src` ends; BrokenPipeError as soon as our reader is gone (`| head`), like
    journalctl -f, not only at the next line, which may never come."""
    poller = select.poll()
    poller.register(src.fileno(), select.POLLIN)
    with contextlib.suppress(OSError, ValueError):  # no real file descriptor (pytest's capsys)
        poller.register(out.fileno(), 0)  # POLLERR / POLLHUP only
    while True:
        if any(fd != src.fileno() for fd, _event in poller.poll()):
            raise BrokenPipeError("the reader of our output is gone")
        chunk = os.read(src.fileno(), 65536)
        if not chunk:
            return
        out.write(chunk)
        out.flush()


def _end_group(child: subprocess.Popen[bytes], grace: float = 5) -> None:
    """SIGTERM the child's process group, wait until every member is gone, SIGKILL after `grace`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    if child.stdout is not None:
        child.stdout.close()
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace)
    while _group_alive(child.pid):  # the leader is reaped: only the rest of its group is left
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """A process other than a zombie is still in group `pgid` (os.killpg(pgid, 0) counts zombies)."""
    return any(
        len(fields) >= 3 and fields[2] == str(pgid) and fields[0] not in ("Z", "X")
        for _pid, fields in proc_stats(Path("/proc"))
    )
