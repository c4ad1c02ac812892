"""Creating, finding, listing and destroying hosts.

A host is a directory under /var/lib/integrator/sandboxes/NAME (overlay upper/work/root, pid
files, console.log), one cgroup per hierarchy, a veth pair and a network slot. `destroy` removes
each of them whether or not the others still exist, so it also cleans up after crashes.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from ..errors import HostError, UsageError
from . import cgroups, net
from .host import BOOT_TIMEOUT, Sandbox, SandboxInfo, boot, console_tail
from .mounts import mount_overlay, mounts_under, unmount_under
from .paths import INSIDE_PATH, STATE_DIR, HostPaths, host_names, host_paths, write_atomic
from .prereq import ensure_prerequisites
from .procs import (
    SUPERVISOR_MODULE,
    inside_argv,
    leader_pid,
    nspawn_pid,
    run,
    signal_pids,
    supervisor_pid,
    wait_gone,
)
from .rootfs import HOSTS, ensure_base

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
STOP_TIMEOUT = 30.0
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the directory holding `integrator/`
PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")


def create(name: str, *, progress: Progress | None = None) -> Sandbox:
    """Boot a new host on a copy-on-write root and return once it is running, reachable at its address."""
    paths = host_paths(name)
    say = progress or (lambda _msg: None)
    ensure_prerequisites()
    base = ensure_base(progress=say)
    started = time.monotonic()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        paths.dir.mkdir()
    except FileExistsError:
        raise UsageError(f"sandbox {name} already exists; use it, or destroy it first") from None
    try:
        _prepare_root(paths, base)
        write_atomic(paths.net_index, f"{net.allocate(name)}\n")
        _start_supervisor(paths)
        sandbox = boot(paths, started + BOOT_TIMEOUT)
    except BaseException:
        _destroy_quietly(name)
        raise
    return sandbox


def _prepare_root(paths: HostPaths, base: Path) -> None:
    for d in (paths.upper, paths.work, paths.root):
        d.mkdir()
    write_atomic(paths.base, f"{base}\n")
    mount_overlay(base, paths.upper, paths.work, paths.root)
    (paths.root / "etc/hostname").write_text(paths.name + "\n")
    (paths.root / "etc/hosts").write_text(HOSTS.format(name=paths.name))


def _start_supervisor(paths: HostPaths) -> None:
    """Start the detached supervisor; it forks away at once, so waiting for it here is short."""
    cgroups.create(paths.name)
    env = {"PATH": INSIDE_PATH, "LANG": "C.UTF-8", "PYTHONPATH": str(PACKAGE_PARENT)}
    with paths.console_log.open("ab") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", SUPERVISOR_MODULE, paths.name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd="/",
        )
    if launcher.wait(timeout=60) != 0:
        raise HostError(f"{paths.name}: the supervisor did not start:\n{console_tail(paths)}")


def get(name: str) -> Sandbox:
    """The running host `name`; UsageError if there is none, HostError if it stopped."""
    paths = host_paths(name)
    if not paths.dir.is_dir():
        raise UsageError(f"no sandbox named {name} (see: integrator sandbox list)")
    index = net.recorded_index(name)
    if leader_pid(paths) is None or index is None:
        raise HostError(f"sandbox {name} is not running; destroy it and create it again")
    return Sandbox(name, net.addresses(index)[1])


def list_sandboxes() -> list[SandboxInfo]:
    """Every host directory with its state, address and the PID (seen from here) of its systemd."""
    infos = []
    for name in host_names():
        leader = leader_pid(host_paths(name))
        index = net.recorded_index(name)
        address = net.addresses(index)[1] if index is not None else None
        infos.append(SandboxInfo(name, "running" if leader else "stopped", address, leader))
    return infos


def destroy(name: str) -> None:
    """Power off (kill if it hangs) and remove everything of host `name`; a no-op if nothing is left."""
    paths = host_paths(name)
    if paths.dir.is_dir():
        paths.stopping.touch()
    _stop(paths)
    _kill_cgroup_members(name)
    net.remove_link(name)
    unmount_under(paths.dir)
    cgroups.remove(name)
    net.release(name)
    shutil.rmtree(PROPAGATE_DIR / name, ignore_errors=True)
    if paths.dir.is_dir():
        if mounts_under(paths.dir):  # never delete through a mount
            raise HostError(f"{name}: still mounted under {paths.dir}")
        shutil.rmtree(paths.dir)


def _stop(paths: HostPaths) -> None:
    """`systemctl poweroff` inside (SIGTERM to nspawn as a fallback); SIGKILL after STOP_TIMEOUT."""
    sup, nspawn, leader = supervisor_pid(paths), nspawn_pid(paths), leader_pid(paths)
    if not (sup or nspawn or leader):
        return
    asked = False
    if leader:
        proc = run(inside_argv(leader, ["systemctl", "poweroff", "--no-block"]), check=False, timeout=10)
        asked = proc.returncode == 0
    if not asked:
        signal_pids([nspawn or sup], signal.SIGTERM)  # nspawn turns SIGTERM into a clean shutdown
    if wait_gone([sup, nspawn, leader], STOP_TIMEOUT):
        return
    # killing the container's PID 1 kills its whole PID namespace
    signal_pids([leader_pid(paths) or leader, nspawn, sup], signal.SIGKILL)
    if not wait_gone([sup, nspawn, leader], 10):
        raise HostError(f"{paths.name}: processes survive SIGKILL: {sup} {nspawn} {leader}")


def _kill_cgroup_members(name: str) -> None:
    """Whatever is left in the host's cgroups (e.g. after its supervisor was killed) is killed."""
    members = cgroups.pids(name)
    if members:
        signal_pids(members, signal.SIGKILL)
        if not wait_gone(members, 10):
            raise HostError(f"{name}: processes {sorted(members)} survive SIGKILL")


def _destroy_quietly(name: str) -> None:
    """Clean up a failed create without hiding why it failed."""
    try:
        destroy(name)
    except Exception as exc:  # the create error is the one to report
        log.warning("cleaning up sandbox %s failed too: %s", name, exc)
