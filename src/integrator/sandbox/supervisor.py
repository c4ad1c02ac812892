"""The detached process that keeps one host's systemd-nspawn running across reboots.

`python3 -m integrator.sandbox.supervisor NAME` forks once more and returns at once, so the
caller can wait for it and nothing of the caller (stdout, process group) stays attached. The
daemon joins the host's cgroups, starts nspawn, and starts it again on the same root when it
exits with 133 (`systemctl reboot` inside), re-addressing the veth nspawn re-created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from .cgroups import host_cgroups, join
from .net import configure, recorded_index
from .paths import HostPaths, host_paths, write_atomic
from .procs import leader_pid

REBOOT_EXIT_CODE = 133


def nspawn_argv(paths: HostPaths) -> list[str]:
    # --register=no --keep-unit: there is no machined and no system bus on this machine
    return [
        "systemd-nspawn",
        "--quiet",
        "-D",
        str(paths.root),
        "-M",
        paths.name,
        "-b",
        "--register=no",
        "--keep-unit",
        "--network-veth",
        "--console=read-only",
    ]


def log(message: str) -> None:
    print(f"=== integrator supervisor: {message} ===", flush=True)


class Supervisor:
    """Runs nspawn in a loop; SIGTERM is passed on to nspawn (a clean poweroff) and ends the loop."""

    def __init__(self, paths: HostPaths) -> None:
        self.paths = paths
        self.child: subprocess.Popen[bytes] | None = None
        self.terminating = False

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        self.terminating = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_sigterm)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        join(host_cgroups(self.paths.name), os.getpid())
        boots = 0
        while True:
            self.child = subprocess.Popen(nspawn_argv(self.paths), stdin=subprocess.DEVNULL)
            write_atomic(self.paths.nspawn_pid, f"{self.child.pid}\n")
            if self.terminating:  # SIGTERM came while no nspawn was running
                self.child.send_signal(signal.SIGTERM)
            if boots:
                self.readdress()
            rc = self.child.wait()
            boots += 1
            if rc != REBOOT_EXIT_CODE or self.terminating or self.paths.stopping.exists():
                break
            log(f"reboot #{boots}: starting systemd-nspawn again on the same root")
        log(f"systemd-nspawn exited with {rc}")
        write_atomic(self.paths.exit_code, f"{rc}\n")
        return 0

    def readdress(self, timeout: float = 60) -> None:
        """After a reboot nspawn made a new veth pair: give it the host's addresses again."""
        index = recorded_index(self.paths.name)
        deadline = time.monotonic() + timeout
        while index is not None and time.monotonic() < deadline:
            assert self.child is not None
            if self.child.poll() is not None:
                return
            leader = leader_pid(self.paths)
            if leader is not None:
                try:
                    configure(self.paths.name, index, leader)
                    log("network re-addressed after reboot")
                except Exception as exc:  # the caller's reboot() retries and reports
                    log(f"network setup after reboot failed: {exc}")
                return
            time.sleep(0.1)


def main(argv: Sequence[str]) -> int:
    """Detach (fork; the parent records the daemon's pid and exits), then supervise."""
    if len(argv) != 1:
        print("usage: python3 -m integrator.sandbox.supervisor NAME", file=sys.stderr)
        return 2
    paths = host_paths(argv[0])
    pid = os.fork()
    if pid:
        write_atomic(paths.supervisor_pid, f"{pid}\n")
        os._exit(0)
    os.setsid()
    return Supervisor(paths).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
