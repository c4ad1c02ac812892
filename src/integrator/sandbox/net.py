"""veth addressing: each host gets 10.213.N.0/30, this side .1, the host's end .2.

nspawn's `--network-veth` creates ve-NAME here and host0 inside but configures nothing. No
default route is set inside, so a host can only talk to this machine's end of its own link, and
before anything is sent the route to the host's address is checked to really go over ve-NAME.
"""

from __future__ import annotations

import time

from ..errors import HostError
from .paths import NAME_RE, STATE_DIR, host_paths, locked, read_text, write_atomic
from .procs import run

NET_DIR = STATE_DIR / ".net"  # one file per allocated N, holding the host's name
SLOTS = 256


def link_name(name: str) -> str:
    return f"ve-{name}"


def addresses(index: int) -> tuple[str, str]:
    """(this side, the host's side) of slot `index`."""
    if not 0 <= index < SLOTS:
        raise HostError(f"network slot {index} out of range")
    return f"10.213.{index}.1", f"10.213.{index}.2"


def allocate(name: str) -> int:
    """Claim the lowest free slot for `name` (or its existing one); slots of vanished hosts are reused."""
    with locked(NET_DIR / ".lock"):
        free = None
        for index in range(SLOTS):
            owner = read_text(NET_DIR / str(index))
            if owner == name:
                return index
            if free is None and (owner is None or not _host_exists(owner)):
                free = index
        if free is None:
            raise HostError(f"all {SLOTS} sandbox network slots are in use; destroy some hosts")
        write_atomic(NET_DIR / str(free), name + "\n")
        return free


def _host_exists(owner: str) -> bool:
    return bool(NAME_RE.match(owner)) and (STATE_DIR / owner).is_dir()


def release(name: str) -> None:
    """Free every slot held by `name`."""
    if not NET_DIR.is_dir():
        return
    with locked(NET_DIR / ".lock"):
        for slot in NET_DIR.iterdir():
            if slot.name.isdigit() and read_text(slot) == name:
                slot.unlink()


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", link_name(name)], check=False, timeout=10).returncode == 0


def remove_link(name: str) -> None:
    """Delete ve-NAME if nspawn left it behind (normally it goes away with the netns)."""
    if link_exists(name):
        run(["ip", "link", "del", "dev", link_name(name)], check=False, timeout=10)


def configure(name: str, index: int, leader: int, timeout: float = 10) -> str:
    """Address both ends of the veth (idempotent) and return the host's address once routed via ve-NAME."""
    here, there = addresses(index)
    deadline = time.monotonic() + timeout
    while not link_exists(name):
        if time.monotonic() > deadline:
            raise HostError(f"{name}: interface {link_name(name)} did not appear")
        time.sleep(0.05)
    inside = ["nsenter", "-t", str(leader), "-n"]
    for argv in (
        ["ip", "addr", "replace", f"{here}/30", "dev", link_name(name)],
        ["ip", "link", "set", "dev", link_name(name), "up"],
        [*inside, "ip", "addr", "replace", f"{there}/30", "dev", "host0"],
        [*inside, "ip", "link", "set", "dev", "host0", "up"],
        [*inside, "ip", "link", "set", "dev", "lo", "up"],
    ):
        run(argv, timeout=10, what=f"{name}: network setup")
    verify_route(name, there)
    return there


def verify_route(name: str, address: str) -> None:
    """Refuse to talk to `address` unless this machine routes it over the host's own veth."""
    out = run(["ip", "-o", "route", "get", address], check=False, timeout=10).stdout.decode()
    if f" dev {link_name(name)} " not in f" {out} ":
        raise HostError(f"{name}: route to {address} does not go via {link_name(name)}: {out.strip()!r}")


def recorded_index(name: str) -> int | None:
    text = read_text(host_paths(name).net_index)
    return int(text) if text and text.isdigit() else None
