"""`run`'s output to the terminal AND the journal (issue 10 item 2), HOST-SIDE.

Without a terminal the command's stdout and stderr come back to us through pipes; each chunk is
passed on to ours as it arrives and each line also goes to the journal (journald's native
protocol, `journal_entry`: pure, tested as data), tagged `NAME-run` with the transient unit's
name, so `journalctl -t NAME-run` or `journalctl -u NAME-run-PID.service` shows what ran and what
it printed. With a terminal (`--pty`) systemd-run owns it and the output is not copied: the
journal gets the start and the exit code only. We are root: `OBJECT_SYSTEMD_UNIT` is trusted
from uid 0 only, which is what makes `journalctl -u` match these lines.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Optional

JOURNAL_SOCKET = "/run/systemd/journal/socket"
MAX_LINE = 16384  # a longer line is sent in pieces (one datagram each)
INFO = 6  # stdout and stderr alike, as journald takes a service's own output


def journal_entry(fields: Mapping[str, str]) -> bytes:
    """One entry in journald's native protocol: KEY=value lines, a value holding a newline as
    KEY, newline, its 64-bit little-endian length, the bytes, newline."""
    out = b""
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return out


def split_lines(pending: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without their newline, cut at MAX_LINE) and what is left over."""
    *lines, rest = (pending + chunk).split(b"\n")
    while len(rest) > MAX_LINE:
        lines.append(rest[:MAX_LINE])
        rest = rest[MAX_LINE:]
    return [piece for line in lines for piece in _pieces(line)], rest


def _pieces(line: bytes) -> list[bytes]:
    return [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]


class Journal:
    """Entries for one run; a journal that cannot be reached is left alone (the run goes on)."""

    def __init__(self, tag: str, unit: str, path: str = JOURNAL_SOCKET) -> None:
        self.tag, self.unit, self.path = tag, unit, path
        self.broken: Optional[str] = None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, message: bytes) -> None:
        if self.broken is not None:
            return
        fields = {
            "MESSAGE": message.decode("utf-8", "replace"),
            "PRIORITY": str(INFO),
            "SYSLOG_IDENTIFIER": self.tag,
            "OBJECT_SYSTEMD_UNIT": self.unit,
        }
        try:
            self._sock.sendto(journal_entry(fields), self.path)
        except OSError as exc:
            self.broken = f"{self.path}: {exc.strerror or exc}"

    def close(self) -> None:
        self._sock.close()


def run_teed(argv: Sequence[str], env: Mapping[str, str], journal: Journal) -> int:
    """Run `argv` (stdin ours); its output to ours and to `journal`; its exit code."""
    proc = subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    copies = [
        threading.Thread(target=_copy, args=(proc.stdout, sys.stdout.buffer, journal), daemon=True),
        threading.Thread(target=_copy, args=(proc.stderr, sys.stderr.buffer, journal), daemon=True),
    ]
    for copy in copies:
        copy.start()
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # systemd-run got it too and stops the unit: wait for that
        proc.wait()
        raise
    finally:
        for copy in copies:
            copy.join()
    return rc


def _copy(src: IO[bytes], out: IO[bytes], journal: Journal) -> None:
    """Until `src` ends: each chunk to `out` (as long as someone reads it) and each line to the journal."""
    pending, reader_gone = b"", False
    for chunk in iter(lambda: os.read(src.fileno(), 65536), b""):
        if not reader_gone:
            try:
                out.write(chunk)
                out.flush()
            except BrokenPipeError:  # `| head`: the journal still gets the rest
                reader_gone = True
        lines, pending = split_lines(pending, chunk)
        for line in lines:
            journal.send(line)
    if pending:
        journal.send(pending)
