"""ssh, one connection per command: a master connection (`ssh -M -N`) that every ssh the command
runs shares through a control socket (issue 10 item 7).

A command may run ssh more than once (`logs -f` checks the host, then streams; a host that has
not cached the host tool is asked again with it; `run` caches the tool, then runs with our
terminal). `SshTarget.connected` (transport.py) gives the command a target whose ssh calls go
through one `Multiplexer`: the master starts at the first call, so every check that comes before
any connection still comes first and a failed connection reads as before; it is our child (it
dies with us) and its socket lives in a fresh 0700 directory of ours, removed with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import EnvironmentProblem, HostError

_PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 120.0  # ConnectTimeout and authentication, bounded


def ssh_message(stderr: bytes) -> str:
    """ssh's own reason, on one line: its last line (with the one before for a host key)."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "no message from ssh"
    last = lines[-1].removeprefix("ssh: ")
    if last == "Host key verification failed." and len(lines) > 1:
        last = f"{lines[-2]} {last}"
    return last


def master_argv(options: Sequence[str], destination: str, control: str) -> list[str]:
    """The master: authenticates, opens no session (-N), serves the control socket until stopped."""
    return [
        "ssh",
        *options,
        "-M",
        "-N",
        "-o",
        f"ControlPath={control}",
        "-o",
        "ControlPersist=no",
        destination,
    ]


def client_options(control: str) -> list[str]:
    """For every other ssh of the command: through the master's socket, never a master itself."""
    return ["-o", f"ControlPath={control}", "-o", "ControlMaster=no"]


class Multiplexer:
    """One command's ssh master, started at the first `options()` and stopped by `close()`."""

    def __init__(self, options: Sequence[str], destination: str) -> None:
        self._options, self._destination = list(options), destination
        self._dir: str | None = None
        self._master: subprocess.Popen[bytes] | None = None

    def options(self) -> list[str]:
        if self._master is None:
            self._start()
        assert self._dir is not None
        return client_options(os.path.join(self._dir, "master"))

    def _start(self) -> None:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        self._dir = tempfile.mkdtemp(
            prefix="integrator-ssh-", dir=runtime if runtime and os.path.isdir(runtime) else None
        )
        control = os.path.join(self._dir, "master")
        argv = master_argv(self._options, self._destination, control)
        try:
            self._master = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        except FileNotFoundError:
            raise EnvironmentProblem("ssh: not found on this machine (install openssh-client)") from None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not os.path.exists(control):  # the socket is made once the master has logged in
            if self._master.poll() is not None:
                stderr = self._master.stderr.read() if self._master.stderr else b""
                self.close()
                raise HostError(f"ssh to {self._destination} failed: {ssh_message(stderr)}")
            if time.monotonic() > deadline:
                self.close()
                raise HostError(f"ssh {self._destination}: no answer after {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the master (its sessions end with it) and remove its directory."""
        if self._master is not None:
            if self._master.poll() is None:
                self._master.send_signal(signal.SIGTERM)
                try:
                    self._master.wait(10)
                except subprocess.TimeoutExpired:
                    self._master.kill()
                    self._master.wait()
            if self._master.stderr:
                self._master.stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def one_connection(target: Any) -> Iterator[Any]:
    """`target` for one command: an ssh target shares one connection (`connected`), others are as is."""
    connected = getattr(target, "connected", None)
    if connected is None:
        yield target
    else:
        with connected() as shared:
            yield shared


def _die_with_parent() -> None:
    """In the master, before exec: SIGTERM when integrator dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
