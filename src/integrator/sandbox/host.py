"""A handle on one running host: run commands inside, copy files, reboot, use its network.

The handle holds only the name and address; the container's PID 1 is looked up for each call,
so a handle stays valid across reboots (which give the host a new PID 1 and a new netns).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import HostError
from . import net, transfer
from .paths import HostPaths, host_paths
from .procs import alive, inside_argv, leader_pid, nspawn_pid, run, supervisor_pid, tail, wait_gone

BOOT_TIMEOUT = 120.0
GOOD_STATES = ("running", "degraded")
BAD_STATES = ("maintenance", "stopping")


@dataclass(frozen=True)
class SandboxInfo:
    """One line of `list_sandboxes()`."""

    name: str
    state: str  # "running" or "stopped"
    address: str | None
    leader: int | None


@dataclass(frozen=True)
class Sandbox:
    """A running host; get one from `create()` or `get()`."""

    name: str
    address: str  # the host's end of the veth, routed from this machine via ve-NAME

    @property
    def paths(self) -> HostPaths:
        return host_paths(self.name)

    def leader(self) -> int:
        """PID (seen from here) of the host's systemd; HostError if it is not running."""
        pid = leader_pid(self.paths)
        if pid is None:
            raise HostError(f"sandbox {self.name} is not running")
        return pid

    def exec_argv(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """The nsenter command line that runs `argv` inside (for callers that need their own stdio)."""
        return inside_argv(self.leader(), argv, env)

    def exec(
        self,
        argv: Sequence[str],
        *,
        input: bytes | None = None,
        check: bool = True,
        timeout: float = 300,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` inside as root in /root with a clean environment; output captured."""
        return run(
            self.exec_argv(argv, env),
            input=input,
            timeout=timeout,
            check=check,
            what=f"{self.name}: {shlex.join(argv)}",
        )

    def copy_in(self, src: Path, dest: str) -> None:
        """Copy a file or directory from this machine to the full path `dest` inside."""
        transfer.copy_in(self.leader(), Path(src), dest, label=self.name)

    def copy_out(self, src: str, dest: Path) -> None:
        """Copy a file or directory inside to the full path `dest` on this machine."""
        transfer.copy_out(self.leader(), src, Path(dest), label=self.name)

    def netns_run(
        self, argv: Sequence[str], *, input: bytes | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `argv` on this machine inside the host's network namespace (e.g. curl 127.0.0.1)."""
        return run(
            ["nsenter", "-t", str(self.leader()), "-n", "--", *argv],
            input=input,
            timeout=timeout,
            check=check,
            what=f"{self.name} netns: {shlex.join(argv)}",
        )

    def reboot(self, timeout: float = 120) -> None:
        """`systemctl reboot` inside; the supervisor boots the same root again; wait until it runs."""
        deadline = time.monotonic() + timeout
        old = self.leader()
        self.exec(["systemctl", "reboot"], check=False, timeout=30)
        if not wait_gone([old], timeout):
            raise HostError(f"{self.name}: still not shut down {timeout:g} s after systemctl reboot")
        boot(self.paths, deadline)

    def state(self) -> str:
        """`systemctl is-system-running` inside (running, degraded, starting, ...)."""
        return self.exec(["systemctl", "is-system-running"], check=False, timeout=30).stdout.decode().strip()


def console_tail(paths: HostPaths, lines: int = 20) -> str:
    try:
        return tail(paths.console_log.read_bytes(), lines)
    except FileNotFoundError:
        return "(no console log)"


def boot(paths: HostPaths, deadline: float) -> Sandbox:
    """Wait for a (re)started nspawn to run systemd, address its veth, wait until running/degraded."""
    leader = wait_leader(paths, deadline)
    index = net.recorded_index(paths.name)
    if index is None:
        raise HostError(f"{paths.name}: no network slot recorded in {paths.net_index}")
    address = net.configure(paths.name, index, leader)
    wait_running(paths, leader, deadline)
    return Sandbox(paths.name, address)


def wait_leader(paths: HostPaths, deadline: float) -> int:
    """Poll for the container's PID 1; fail early if nspawn and its supervisor are gone."""
    while True:
        leader = leader_pid(paths)
        if leader is not None:
            return leader
        if supervisor_pid(paths) is None and nspawn_pid(paths) is None:
            raise HostError(f"{paths.name}: systemd-nspawn exited while booting:\n{console_tail(paths)}")
        if time.monotonic() > deadline:
            raise HostError(f"{paths.name}: systemd did not start in time:\n{console_tail(paths)}")
        time.sleep(0.05)


def wait_running(paths: HostPaths, leader: int, deadline: float) -> str:
    """Poll `systemctl is-system-running` every 0.1 s (it fails at once until systemd's bus is up)."""
    state = ""
    while time.monotonic() < deadline:
        proc = run(inside_argv(leader, ["systemctl", "is-system-running"]), check=False, timeout=10)
        state = proc.stdout.decode().strip()
        if state in GOOD_STATES:
            return state
        if state in BAD_STATES or not alive(leader):
            break
        time.sleep(0.1)
    raise HostError(f"{paths.name}: boot ended in state {state!r}, not running:\n{console_tail(paths)}")
