"""Where host commands act: this machine, a sandbox host, or one host over ssh.

All real work happens in one code path, the local one, running on the host itself. A remote
target runs a small *host tool* there (this integrator package without template/ and sandbox/,
zipped in memory) as `integrator --json VERB ... --local`, then turns the JSON back into a
Result. The tool is used for every verb, deploy included, rather than the last bundle kept on
the host: it exists before the first deploy and after a failed one, `doctor` and `uninstall`
work on any host, and the code that acts is always the version the operator is running.

Each verb is one connection: `remote.py` sends the stager, which checks a root-only directory,
verifies the cached tool (or the copy sent along) and every upload by sha256, and runs the tool
from a private copy (`stager.py`). Nothing is written to, or run from, /tmp or /var/tmp.

`logs --follow` is the one verb that streams: `stream()` runs the target's command line and
copies its output until the operator stops it, and leaves nothing running on either side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union

from ..errors import EnvironmentProblem, HostError, IntegratorError, UsageError
from ..layout import REMOTE_ROOT
from ..result import Result
from .remote import Arg, Upload, exchange, is_tool_missing, stage_plan, stager_argv, stdin_parts
from .system import System, proc_stats

# Build-side parts the host never imports: kept out of the host tool.
EXCLUDED_PACKAGES = ("template", "sandbox", "fleet")
TOOL_MAIN = (
    "import sys\n"
    "if sys.version_info < (3, 9):\n"
    "    sys.exit('integrator needs Python >= 3.9 on the host; this is ' + sys.version.split()[0])\n"
    "from integrator.cli import main\n"
    "sys.exit(main())\n"
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

    # --- the host tool ---------------------------------------------------------------------
    def invoke(self, args: Sequence[Arg], uploads: Sequence[Upload] = (), *, timeout: float = 900) -> Result:
        """Run `integrator --json ARGS --local` on the host and rebuild its Result: one connection
        when the tool is cached there (always, with uploads: then the tool travels with them)."""
        data, digest = host_tool()
        argv: list[Arg] = ["--json", *args, "--local"]
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
        return exchange(self.exec_argv(argv), parts, timeout, self.describe())

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

    def describe(self) -> str:
        return f"ssh {self.destination}"

    def _options(self) -> list[str]:
        return [*(["-F", self.config] if self.config else []), "-o", "BatchMode=yes"]

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


def ssh_message(stderr: bytes) -> str:
    """ssh's own reason, on one line: its last line (with the one before for a host key)."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "no message from ssh"
    last = lines[-1].removeprefix("ssh: ")
    if last == "Host key verification failed." and len(lines) > 1:
        last = f"{lines[-2]} {last}"
    return last


Target = Union[LocalTarget, RemoteTarget]


def target_from_args(host: str | None = None, ssh: str | None = None) -> Target:
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


# --- streaming (logs --follow) ------------------------------------------------------------------


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


# --- the host tool ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def host_tool() -> tuple[bytes, str]:
    """This integrator package without its build-side parts, as a runnable zip written like a
    bundle: reproducible, so its hash (and the copy cached on each host) changes only with the code."""
    from ..bundle.zipapp import Source, pyz_bytes, source_files

    pkg = Path(__file__).resolve().parent.parent
    members: dict[str, Source] = {"__main__.py": TOOL_MAIN.encode()}
    for path in source_files(pkg):
        rel = path.relative_to(pkg)
        if not (len(rel.parts) > 1 and rel.parts[0] in EXCLUDED_PACKAGES):
            members[f"integrator/{rel.as_posix()}"] = path
    data = pyz_bytes(members)
    return data, hashlib.sha256(data).hexdigest()


def result_from_json(stdout: str, stderr: str) -> Result:
    """The remote `--json` object back into a Result; a remote user error is raised as one here."""
    try:
        payload = json.loads(stdout)
    except ValueError:
        detail = (stderr.strip() or stdout.strip())[-2000:]
        raise HostError(f"the host's integrator did not answer with JSON: {detail}") from None
    exit_code = int(payload.get("exit_code", 1))
    if "error" in payload and not payload.get("ok", False):
        raise RemoteError(str(payload["error"]), exit_code)
    lines = [str(line) for line in payload.pop("lines", [])]
    warnings = [str(w) for w in payload.pop("warnings", [])]
    for key in ("ok", "exit_code"):
        payload.pop(key, None)
    return Result(lines=lines, data=payload, exit_code=exit_code, warnings=warnings)
