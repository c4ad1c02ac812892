"""Who holds a TCP port: /proc/net/tcp{,6} listening sockets matched to /proc/PID/fd (stdlib).

When nginx cannot start, its own error (`bind() to 0.0.0.0:443 failed (98: Address already in
use)`) says which port; this names the program that has it, so the operator knows what to stop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
BIND_ERROR = re.compile(r"bind\(\) to (?P<address>\S+?):(?P<port>\d+) failed \((?P<errno>\d+): [^)]*\)")


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str  # the command line, or the process name when it has none


def parse_listening_inodes(text: str, port: int) -> set[int]:
    """Socket inodes listening on `port` in /proc/net/tcp or tcp6 (hex `address:port`)."""
    inodes = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        _, _, hex_port = fields[1].rpartition(":")
        if int(hex_port, 16) == port and fields[9].isdigit():
            inodes.add(int(fields[9]))
    return inodes


@dataclass(frozen=True)
class BindError:
    text: str  # nginx's words: `bind() to 0.0.0.0:443 failed (98: Address already in use)`
    port: int
    ipv6: bool  # `[::]:443`: look in /proc/net/tcp6, else in /proc/net/tcp


def bind_errors(lines: Iterable[str]) -> list[BindError]:
    """Each distinct failed bind in nginx's output, in order."""
    found: dict[str, BindError] = {}
    for line in lines:
        for m in BIND_ERROR.finditer(line):
            found.setdefault(m[0], BindError(m[0], int(m["port"]), m["address"].startswith("[")))
    return list(found.values())


def port_holders(proc: Path, port: int, ipv6: bool) -> list[Holder]:
    """Processes (under `proc`, a /proc) with a socket listening on `port` (IPv6 or IPv4)."""
    try:
        inodes = parse_listening_inodes((proc / "net" / ("tcp6" if ipv6 else "tcp")).read_text(), port)
    except OSError:
        return []
    if not inodes:
        return []
    wanted = {f"socket:[{i}]" for i in inodes}
    holders = []
    for pid_dir in sorted(proc.glob("[0-9]*"), key=lambda p: int(p.name)):
        if _links(pid_dir / "fd") & wanted:
            holders.append(Holder(int(pid_dir.name), _command(pid_dir)))
    return holders


def _links(fd_dir: Path) -> set[str]:
    """Where a process's fds point; fds (or the process) may go away while we read."""
    links = set()
    try:
        for fd in fd_dir.iterdir():
            try:
                links.add(os.readlink(fd))
            except OSError:
                continue
    except OSError:
        pass
    return links


def _command(pid_dir: Path) -> str:
    try:
        argv = (pid_dir / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        text = " ".join(a.decode(errors="replace") for a in argv if a) or (pid_dir / "comm").read_text()
    except OSError:
        return "?"
    # One line of printable text, whatever the process put in its argv.
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:80]


def describe_holders(port: int, holders: list[Holder]) -> str:
    if not holders:
        return f"no process listening on port {port} was found (it may have exited)"
    who = ", ".join(f"pid {h.pid} ({h.command})" for h in holders)
    return f"port {port} is held by {who} (stop it, or choose other ports in [http])"
