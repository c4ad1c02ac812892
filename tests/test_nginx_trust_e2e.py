"""Issue 8, finding 7 on a real host: unknown names and a client's forwarding headers never reach
the app, as its own request log in the journal shows. One fresh sandbox host, two services
(`front` on 443/80, `alt` on 8443/8080), traffic only to the sandbox's address.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import uuid
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.test_deploy_e2e import _build, _new_service, get, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _https(address: str, port: int, sni: str | None, host: str, headers: dict[str, str]) -> tuple[int, str]:
    """Status and this machine's address on the connection (what the app must log)."""
    assert address.startswith("10."), address
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPConnection(address, port, timeout=5)
    conn.sock = ctx.wrap_socket(socket.create_connection((address, port), 5), server_hostname=sni)
    try:
        conn.request("GET", "/healthz", headers={"Host": host, **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status, str(conn.sock.getsockname()[0])
    finally:
        conn.close()


def _request_log(box: Sandbox, service: str, marker: str, seconds: float = 5) -> list[dict[str, object]]:
    """The app's JSON request lines carrying X-Request-ID `marker` (waits for journald)."""
    deadline = time.monotonic() + seconds
    while True:
        slots = ("-u", f"{service}-a.service", "-u", f"{service}-b.service")
        out = sh(box, "journalctl", *slots, "-o", "cat", "--no-pager").stdout.decode()
        found = [json.loads(line) for line in out.splitlines() if marker in line and line.startswith("{")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_unknown_names_and_client_headers_never_reach_the_app(sandbox_host: Sandbox, tmp_path: Path) -> None:
    box, target = sandbox_host, SandboxTarget(sandbox_host.name)
    front = _build(_new_service("front", tmp_path / "front"), tmp_path / "dist" / "front")
    src = _new_service("alt", tmp_path / "alt")
    toml = src / "service.toml"
    toml.write_text(toml.read_text().replace("https_port = 443", "https_port = 8443"))
    toml.write_text(toml.read_text().replace("http_port = 80", "http_port = 8080"))
    assert "https_port = 8443" in toml.read_text() and "http_port = 8080" in toml.read_text()
    ok(commands.deploy(DeployOptions(front), target))
    ok(commands.deploy(DeployOptions(_build(src, tmp_path / "dist" / "alt")), target))
    address, tag = box.address, uuid.uuid4().hex[:12]

    # Unknown names: no TLS handshake at all (the bare address, a made-up SNI) ...
    for sni in (None, "attacker.example"):
        with pytest.raises(ssl.SSLError):
            _https(address, 443, sni, "attacker.example", {"X-Request-ID": f"bad-{tag}"})
    # ... a known name in the handshake but another in Host: 421 Misdirected Request, from nginx.
    assert _https(address, 443, "front", "attacker.example", {"X-Request-ID": f"bad-{tag}"})[0] == 421
    # Plain HTTP for a made-up name: Debian's stock default site answers, never a redirect there.
    status, _, headers = get(
        address, "/", "attacker.example", https=False, headers={"X-Request-ID": f"bad-{tag}"}
    )
    assert not (300 <= status < 400 and "attacker" in headers.get("Location", "")), (status, headers)

    # A client's forwarding headers: the app sees its own name and the real peer address.
    lies = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "1.2.3.4",
        "X-Forwarded-Prefix": "/evil",
        "Forwarded": "for=1.2.3.4;host=evil.example",
        "X-Request-ID": f"good-{tag}",
    }
    status, peer = _https(address, 443, "front", "front", lies)
    assert status == 200
    [entry] = _request_log(box, "front", f"good-{tag}")
    assert (entry["host"], entry["remote_addr"]) == ("front", peer), entry
    assert peer != "1.2.3.4"
    # Nothing that nginx turned away reached the app (checked after the good line arrived).
    assert _request_log(box, "front", f"bad-{tag}", seconds=0) == []

    # A non-443 port survives: in the redirect, and in the host the app sees.
    status, _, headers = get(address, "/x?y=1", "alt", https=False, port=8080)
    assert (status, headers.get("Location")) == (301, "https://alt:8443/x?y=1")
    lies["X-Request-ID"] = f"alt-{tag}"
    assert _https(address, 8443, "alt", "alt", lies)[0] == 200
    [entry] = _request_log(box, "alt", f"alt-{tag}")
    assert entry["host"] == "alt:8443", entry
    assert _request_log(box, "front", f"alt-{tag}", seconds=0) == []

    # A release that moves to another port leaves no catch-all behind on the old one.
    toml.write_text(toml.read_text().replace("https_port = 8443", "https_port = 9443"))
    ok(commands.deploy(DeployOptions(_build(src, tmp_path / "dist" / "alt2")), target))
    assert _https(address, 9443, "alt", "alt", {})[0] == 200
    listing = sh(box, "ls", "/etc/nginx/conf.d").stdout.decode().split()
    assert sorted(n for n in listing if n.startswith("00-integrator")) == [
        "00-integrator-catch-all-http-80.conf",
        "00-integrator-catch-all-http-8080.conf",
        "00-integrator-catch-all-https-443.conf",
        "00-integrator-catch-all-https-9443.conf",
    ]

    # The catch-alls stay while a site uses their port, and go with the last one.
    catch_alls = "ls /etc/nginx/conf.d | grep -c '^00-integrator-catch-all-' || true"
    assert sh(box, "sh", "-c", catch_alls).stdout.decode().strip() == "4"
    ok(commands.uninstall("alt", target, purge=False))
    listing = sh(box, "ls", "/etc/nginx/conf.d").stdout.decode().split()
    assert sorted(n for n in listing if n.startswith("00-integrator")) == [
        "00-integrator-catch-all-http-80.conf",
        "00-integrator-catch-all-https-443.conf",
    ]
    ok(commands.uninstall("front", target, purge=False))
    assert not [n for n in sh(box, "ls", "/etc/nginx/conf.d").stdout.decode().split() if "integrator" in n]
    assert sh(box, "nginx", "-t").returncode == 0
