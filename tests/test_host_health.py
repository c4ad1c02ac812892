"""Health check through TLS: name choice, and a real HTTPS round trip on 127.0.0.1."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrator.host.health import check_name, probe_once, wait_healthy
from integrator.spec import ServiceSpec, parse_spec


def spec(names: list[str], port: int = 443) -> ServiceSpec:
    return parse_spec(
        {
            "service": {"name": "shop", "version": "1.0", "entry": "shop:create_app()"},
            "http": {"server_names": names, "https_port": port, "http_port": 8080},
        }
    )


def test_check_name() -> None:
    assert check_name(spec([])) == "shop"
    assert check_name(spec(["_"])) == "localhost"
    assert check_name(spec(["shop.example.org", "b"])) == "shop.example.org"


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=shop", "-addext", "subjectAltName=DNS:shop", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.headers['Host']} {self.path}")
            self.send_response(200 if self.path == "/healthz" else 500)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()


def test_probe_sends_host_header_and_reads_status(https_server: tuple[int, list[str]]) -> None:
    port, seen = https_server
    probe = probe_once(spec(["shop"], port), None)
    assert probe.ok and probe.status == 200
    assert seen == ["shop /healthz"]


def test_probe_verifies_against_a_provided_certificate(
    https_server: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, _ = https_server
    assert probe_once(spec(["shop"], port), str(tmp_path / "c.pem")).ok
    other = spec(["other"], port)  # name not in the certificate: verification fails
    assert not probe_once(other, str(tmp_path / "c.pem")).ok


def test_wait_healthy_gives_up_at_the_deadline() -> None:
    probe = wait_healthy(spec(["shop"], 1), None, deadline_s=0.5, interval=0.1)
    assert not probe.ok and probe.status == 0
