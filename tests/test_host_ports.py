"""Why nginx did not start or reload: its own bind error, and who holds the port (/proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrator.host import ports, units

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0
   2: 0100007F:01BB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0
"""

JOURNAL = [
    "Starting nginx.service - A high performance web server and a reverse proxy server...",
    "nginx: [emerg] bind() to 0.0.0.0:443 failed (98: Address already in use)",
    "nginx: [emerg] bind() to 0.0.0.0:443 failed (98: Address already in use)",
    "nginx: [emerg] still could not bind()",
    "nginx.service: Control process exited, code=exited, status=1/FAILURE",
]


def test_listening_inodes_on_a_port() -> None:
    assert ports.parse_listening_inodes(TCP, 443) == {4242}  # the connected socket (01) is not listening
    assert ports.parse_listening_inodes(TCP, 80) == {77}
    assert ports.parse_listening_inodes(TCP, 8080) == set()


def test_bind_errors_once_each_with_their_family() -> None:
    logged = [
        *JOURNAL,
        "2026/11/29 09:08:22 [emerg] 479#479: bind() to [::]:8443 failed (98: Address in use)",
    ]
    assert ports.bind_errors(logged) == [
        ports.BindError("bind() to 0.0.0.0:443 failed (98: Address already in use)", 443, False),
        ports.BindError("bind() to [::]:8443 failed (98: Address in use)", 8443, True),
    ]


@pytest.mark.parametrize(
    ("logged", "holders", "expected"),
    [
        (
            JOURNAL,
            {"bind() to 0.0.0.0:443 failed (98: Address already in use)": [ports.Holder(59, "python3 -c x")]},
            "bind() to 0.0.0.0:443 failed (98: Address already in use): port 443 is held by "
            "pid 59 (python3 -c x) (stop it, or choose other ports in [http])",
        ),
        (
            JOURNAL,
            {},
            "bind() to 0.0.0.0:443 failed (98: Address already in use): no process listening on "
            "port 443 was found (it may have exited)",
        ),
        (
            ["x", 'nginx: [emerg] cannot load certificate "/etc/a.pem"', "nginx.service: Failed"],
            {},
            'nginx: [emerg] cannot load certificate "/etc/a.pem"',
        ),
        (["Starting nginx", "nginx.service: Failed with result 'exit-code'."], {},
         "nginx.service: Failed with result 'exit-code'."),
        ([], {}, "no message (see `journalctl -u nginx.service`)"),
    ],
)  # fmt: skip
def test_start_failure_names_the_cause(
    logged: list[str], holders: dict[str, list[ports.Holder]], expected: str
) -> None:
    assert units.start_failure(logged, holders) == expected


def test_the_process_holding_a_port_is_found_in_proc() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        holders = ports.port_holders(Path("/proc"), port, ipv6=False)
        assert [h.pid for h in holders] == [os.getpid()]
        assert "python" in holders[0].command
        assert ports.port_holders(Path("/proc"), port, ipv6=True) == []
    assert ports.port_holders(Path("/proc"), port, ipv6=False) == []


def test_a_holder_is_named_on_one_printable_line(tmp_path: Path) -> None:
    ready = tmp_path / "port"
    script = (
        "import socket, sys, time\n"
        "s = socket.socket()\n"
        "s.bind(('127.0.0.1', 0))\n"
        "s.listen()\n"
        f"open({str(ready)!r}, 'w').write(str(s.getsockname()[1]))\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script + "#\x1b[31m"])
    try:
        for _ in range(100):
            if ready.exists() and ready.read_text():
                break
            time.sleep(0.05)
        holders = ports.port_holders(Path("/proc"), int(ready.read_text()), ipv6=False)
        assert [h.pid for h in holders] == [child.pid]
        command = holders[0].command
        assert command.startswith(f"{sys.executable} -c import socket, sys, time s =")
        assert command.isprintable() and len(command) <= 80
    finally:
        child.kill()
        child.wait()
