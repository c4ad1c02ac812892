"""`run`'s output to the terminal and the journal (host/run_journal.py): the native-protocol
entries as data, and a real process teed to a datagram socket standing in for journald's."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

import pytest

from integrator.host.run_journal import MAX_LINE, Journal, journal_entry, run_teed, split_lines


def test_journal_entry_is_journalds_native_protocol() -> None:
    assert journal_entry({"MESSAGE": "hello", "PRIORITY": "6"}) == b"MESSAGE=hello\nPRIORITY=6\n"
    # a value with a newline: the key, a newline, its length (64-bit little endian), the bytes
    assert journal_entry({"MESSAGE": "a\nb"}) == b"MESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\n"
    assert journal_entry({"MESSAGE": "caf\u00e9"}) == "MESSAGE=caf\u00e9\n".encode()


@pytest.mark.parametrize(
    ("pending", "chunk", "lines", "rest"),
    [
        (b"", b"one\ntwo\nthr", [b"one", b"two"], b"thr"),
        (b"thr", b"ee\n", [b"three"], b""),
        (b"", b"\n\n", [b"", b""], b""),
        (b"", b"x" * (MAX_LINE + 5), [b"x" * MAX_LINE], b"xxxxx"),  # no newline yet: cut anyway
        (b"", b"y" * (MAX_LINE + 1) + b"\n", [b"y" * MAX_LINE, b"y"], b""),
    ],
)
def test_split_lines(pending: bytes, chunk: bytes, lines: list[bytes], rest: bytes) -> None:
    assert split_lines(pending, chunk) == (lines, rest)


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_the_output_reaches_ours_and_the_journal(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journald:
        journald.bind(path)
        journald.settimeout(10)
        journal = Journal("shop-run", "shop-run-42.service", path)
        code = "import sys; print('out 1'); sys.stderr.write('err 1\\n'); print('out 2', end='')"
        rc = run_teed([sys.executable, "-c", code], {}, journal)
        journal.close()
        entries = [_fields(journald.recv(65536)) for _ in range(3)]
    assert rc == 0
    out, err = capfd.readouterr()
    assert (out, err) == ("out 1\nout 2", "err 1\n")
    assert sorted(e["MESSAGE"] for e in entries) == ["err 1", "out 1", "out 2"]
    assert {(e["SYSLOG_IDENTIFIER"], e["OBJECT_SYSTEMD_UNIT"], e["PRIORITY"]) for e in entries} == {
        ("shop-run", "shop-run-42.service", "6")
    }


def test_no_journal_to_reach_leaves_the_run_alone(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    journal = Journal("shop-run", "shop-run-42.service", str(tmp_path / "absent.sock"))
    assert run_teed([sys.executable, "-c", "print('still here'); raise SystemExit(3)"], {}, journal) == 3
    assert capfd.readouterr().out == "still here\n"
    assert journal.broken is not None and "absent.sock" in journal.broken
