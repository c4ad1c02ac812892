"""Where host commands act: this machine, a sandbox host, or one host over ssh.

All real work happens in one code path, the local one, running on the host itself. A remote
target runs a small *host tool* there (`HOST_TOOL` in bundle/zipapp.py: the host-side code with
its command line, host/pyzmain.py `tool_main`, zipped in memory) as `--json-lines VERB ...`, then
turns the JSON back into a Result. The tool is used for every verb, deploy included, rather
than the last bundle kept on the host: it exists before the first deploy and after a failed
one, `doctor` and `uninstall` work on any host, and the code that acts is always the version the
operator is running.

Each command is one ssh connection (ssh.py). `remote.py` sends the stager, which checks a
root-only directory, verifies the cached tool (or the copy sent along) and every upload by
sha256, and runs the tool from a private copy (`host/stager.py`); nothing is written to, or run
from, /tmp or /var/tmp. `logs --follow` streams (`host/stream.py`) until the operator stops it,
and leaves nothing running on either side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Union

from ..errors import EnvironmentProblem, HostError, IntegratorError, UsageError
from ..host.progress import forward
from ..host.system import System
from ..layout import REMOTE_ROOT
from ..result import Result
from .remote import Arg, Upload, exchange, is_tool_missing, stage_plan, stager_argv, stdin_parts
from .ssh import Multiplexer, ssh_message

TOOL_MAIN = (
    "import sys\n"
    "if sys.version_info < (3, 9):\n"
    "    sys.exit('integrator needs Python >= 3.9 on the host; this is ' + sys.version.split()[0])\n"
    "from integrator.host.pyzmain import tool_main\n"
    "sys.exit(tool_main())\n"
)
# An ssh config file to use instead of ~/.ssh/config (ssh -F): keys, known hosts, port, jump hosts.
SSH_CONFIG_ENV = "INTEGRATOR_SSH_CONFIG"
SSH_FAILED = 255  # ssh's own exit code for its failures; the commands we run remotely never use it


class RemoteError(IntegratorError):
    """An error reported by integrator on the remote host, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LocalTarget:
    """This machine: host code runs in this process."""

    system: System = field(default_factory=System)

    def describe(self) -> str:
        return "this machine"


class RemoteTarget:
    """A host reached by running commands on it; subclasses say how."""

    remote_root: PurePosixPath = REMOTE_ROOT  # the root-only directory the stager checks and uses

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        raise NotImplementedError

    def stream_argv(self, argv: Sequence[str]) -> list[str]:
        """A local command line that runs `argv` on the host, its output on our stdout (logs -f)."""
        raise NotImplementedError

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """A local command line that runs `argv` on the host as root, with our stdin as its stdin."""
        raise NotImplementedError

    def interactive_argv(self, argv: Sequence[str], tty: bool) -> list[str]:
        """A local command line that runs `argv` on the host as root with our stdin, stdout and
        stderr (`run`); with `tty`, on a terminal there."""
        return self.exec_argv(argv)

    # --- the host tool ---------------------------------------------------------------------
    def run_tool(self, args: Sequence[str], tty: bool) -> int:
        """Run the host tool with ARGS on the host with our terminal (`run`): its exit code.
        The tool is cached there first (`list` sends it if missing), so nothing else is on stdin."""
        self.invoke(["list"])
        data, digest = host_tool()
        plan = stage_plan(digest, len(data), False, [], list(args), self.remote_root)
        argv = self.interactive_argv(stager_argv(plan), tty)
        try:
            return subprocess.call(argv)
        except FileNotFoundError:
            raise EnvironmentProblem(f"{argv[0]}: not found on this machine") from None

    def invoke(self, args: Sequence[Arg], uploads: Sequence[Upload] = (), *, timeout: float = 900) -> Result:
        """Run the host tool's `--json-lines ARGS` on the host, pass its step lines on as they
        arrive (host/progress.py) and rebuild its Result from the last line: one connection when
        the tool is cached there (always, with uploads: then the tool travels with them)."""
        data, digest = host_tool()
        argv: list[Arg] = ["--json-lines", *args]
        for send_tool in (True,) if uploads else (False, True):
            plan = stage_plan(digest, len(data), send_tool, uploads, argv, self.remote_root)
            parts = stdin_parts(data if send_tool else None, uploads)
            proc = self.exchange(stager_argv(plan), parts, timeout)
            if not is_tool_missing(proc):
                break
        return result_from_json(proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def exchange(
        self, argv: Sequence[str], parts: Iterator[bytes], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        return exchange(self.exec_argv(argv), parts, timeout, self.describe(), StepLines())

    def run_checked(self, argv: Sequence[str]) -> None:
        proc = self.run(argv)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise HostError(f"{self.describe()}: {shlex.join(argv)} failed: {err}")


@dataclass(frozen=True)
class SandboxTarget(RemoteTarget):
    """A sandbox host made by `integrator sandbox create NAME`."""

    name: str

    def _box(self) -> Any:
        from .. import sandbox

        return sandbox.get(self.name)

    def describe(self) -> str:
        return f"sandbox {self.name}"

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        return self._box().exec(list(argv), check=False, timeout=timeout)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return list(self._box().exec_argv(list(argv)))

    def stream_argv(self, argv: Sequence[str]) -> list[str]:
        return self.exec_argv(argv)


@dataclass(frozen=True)
class SshTarget(RemoteTarget):
    """One real host through the system's ssh; a non-root user goes through `sudo -n`.

    ssh reads the user's ssh config as usual, or `config` instead (`-F`, from
    INTEGRATOR_SSH_CONFIG), and always runs with BatchMode=yes: never a prompt in a script.
    """

    destination: str  # user@host
    config: str | None = None  # an ssh config file used instead of ~/.ssh/config
    mux: Multiplexer | None = field(default=None, compare=False, repr=False)  # see `connected`

    def describe(self) -> str:
        return f"ssh {self.destination}"

    def _options(self) -> list[str]:
        own = [*(["-F", self.config] if self.config else []), "-o", "BatchMode=yes"]
        return own + (self.mux.options() if self.mux else [])

    @contextlib.contextmanager
    def connected(self) -> Iterator[SshTarget]:
        """This target for one command: all its ssh calls share one connection (ssh.py)."""
        mux = Multiplexer(self._options(), self.destination)
        try:
            yield replace(self, mux=mux)
        finally:
            mux.close()

    def _remote_argv(self, argv: Sequence[str], *ssh_flags: str) -> list[str]:
        user = self.destination.split("@", 1)[0] if "@" in self.destination else ""
        prefix = [] if user == "root" else ["sudo", "-n"]
        # ssh hands one string to the remote shell: quote every argument.
        return ["ssh", *self._options(), *ssh_flags, self.destination, "--", shlex.join([*prefix, *argv])]

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        proc = self._call(self._remote_argv(argv), timeout)
        if proc.returncode == SSH_FAILED:
            raise HostError(f"ssh to {self.destination} failed: {ssh_message(proc.stderr)}")
        return proc

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return self._remote_argv(argv)

    def exchange(
        self, argv: Sequence[str], parts: Iterator[bytes], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        proc = super().exchange(argv, parts, timeout)
        if proc.returncode == SSH_FAILED:
            raise HostError(f"ssh to {self.destination} failed: {ssh_message(proc.stderr)}")
        return proc

    def interactive_argv(self, argv: Sequence[str], tty: bool) -> list[str]:
        return self._remote_argv(argv, "-t") if tty else self._remote_argv(argv)

    def stream_argv(self, argv: Sequence[str]) -> list[str]:
        # -n: no stdin, no terminal. When ssh ends, sshd closes the command's output and
        # journalctl -f, which watches it, exits: nothing is left running on the host.
        return self._remote_argv(argv, "-n")

    def _call(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise EnvironmentProblem(
                f"{argv[0]}: not found on this machine (install openssh-client)"
            ) from None
        except subprocess.TimeoutExpired:
            raise HostError(f"{self.describe()}: no answer after {timeout:.0f} s") from None


HostTarget = Union[LocalTarget, RemoteTarget]


def target_from_args(host: str | None = None, ssh: str | None = None) -> HostTarget:
    """--host NAME → sandbox, --ssh USER@HOST → ssh, otherwise (--local) this machine."""
    if host:
        return SandboxTarget(host)
    if ssh:
        return SshTarget(ssh, config=ssh_config_from_env())
    return LocalTarget()


def ssh_config_from_env() -> str | None:
    """INTEGRATOR_SSH_CONFIG=FILE: the ssh config to use instead of ~/.ssh/config."""
    path = os.environ.get(SSH_CONFIG_ENV, "")
    if not path:
        return None
    if not Path(path).is_file():
        raise UsageError(f"{SSH_CONFIG_ENV}={path}: no such file")
    return path


# --- the host tool ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def host_tool() -> tuple[bytes, str]:
    """The host-side code and the command line that runs it (`HOST_TOOL`), as a runnable zip
    written like a bundle: reproducible, so its hash (and the copy cached on each host) changes
    only with the code."""
    from ..bundle.zipapp import HOST_TOOL, Source, host_code, package_dir, pyz_bytes

    members: dict[str, Source] = {"__main__.py": TOOL_MAIN.encode()}
    members.update(host_code(package_dir(), HOST_TOOL))
    data = pyz_bytes(members)
    return data, hashlib.sha256(data).hexdigest()


class StepLines:
    """Splits the host tool's stdout into lines as it arrives and passes each step event on
    (host/progress.py `forward`); the last line, the result, is read when it has ended."""

    def __init__(self) -> None:
        self._pending = b""

    def __call__(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not ours to show: the end result says what went wrong
            if isinstance(event, dict):
                forward(event)


def result_from_json(stdout: str, stderr: str) -> Result:
    """The remote result back into a Result (the last line of `--json-lines`, or a whole
    `--json` object); a remote user error is raised as one here."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    last = lines[-1] if lines and lines[-1].startswith("{") and lines[-1].endswith("}") else stdout
    try:
        payload = json.loads(last)
    except ValueError:
        detail = (stderr.strip() or stdout.strip())[-2000:]
        raise HostError(f"the host's integrator did not answer with JSON: {detail}") from None
    exit_code = int(payload.get("exit_code", 1))
    if "error" in payload and not payload.get("ok", False):
        raise RemoteError(str(payload["error"]), exit_code)
    lines = [str(line) for line in payload.pop("lines", [])]
    warnings = [str(w) for w in payload.pop("warnings", [])]
    for key in ("ok", "exit_code", "event"):
        payload.pop(key, None)
    return Result(lines=lines, data=payload, exit_code=exit_code, warnings=warnings)
