"""Health checks: a new slot's gunicorn on its own socket first (before nginx sends anyone to
it), then through nginx over HTTPS, the way a client reaches the service.

Checking the app's socket alone would pass while nginx, TLS or the site config is broken;
going through `https://127.0.0.1:<https_port>` with the service's host name (SNI and Host:)
tests the whole chain once nginx routes to the new slot.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..spec import ServiceSpec, check_name

# ssl.VERIFY_X509_PARTIAL_CHAIN exists from Python 3.10; the flag value is OpenSSL's.
_PARTIAL_CHAIN = getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)


@dataclass(frozen=True)
class Probe:
    """One answer (or failure) of the health URL."""

    ok: bool
    status: int
    detail: str


def tls_context(cert_file: str | None) -> ssl.SSLContext:
    """Unverified for self-signed certificates; otherwise verified, host name included, against
    `cert_file`: the local CA's certificate (`local-ca`) or the provided certificate itself."""
    if cert_file is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=cert_file)
    ctx.verify_flags |= _PARTIAL_CHAIN  # trust the leaf itself, no chain needed
    return ctx


class _SniConnection(http.client.HTTPSConnection):
    """Connect to an address but speak TLS (SNI) for a host name."""

    def __init__(
        self, address: str, port: int, server_name: str, ctx: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=ctx)
        self._server_name = server_name
        self._ctx = ctx

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self._server_name)


def probe_once(
    spec: ServiceSpec, cert_file: str | None, address: str = "127.0.0.1", timeout: float = 5
) -> Probe:
    name = check_name(spec)
    conn = _SniConnection(address, spec.http.https_port, name, tls_context(cert_file), timeout)
    return _ask(conn, spec.http.health_path, {"Host": name, "User-Agent": "integrator-health"})


def wait_healthy(
    spec: ServiceSpec, cert_file: str | None, deadline_s: float = 20.0, interval: float = 0.3
) -> Probe:
    """Retry until 200 or the deadline; a starting gunicorn answers 502 for a moment."""
    return _retry(lambda: probe_once(spec, cert_file), deadline_s, interval)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP on a unix socket: a slot's gunicorn before nginx routes to it."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def probe_socket_once(spec: ServiceSpec, socket_path: str, timeout: float = 5) -> Probe:
    """The health path asked of gunicorn on its socket, with the headers nginx sets (HTTPS,
    the service's own name): proves the new slot answers before any client is sent to it."""
    name = check_name(spec)
    headers = {"Host": name, "User-Agent": "integrator-health", "X-Forwarded-Proto": "https",
               "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Port": str(spec.http.https_port),
               "X-Forwarded-Host": name, "X-Real-IP": "127.0.0.1", "Connection": "close"}  # fmt: skip
    return _ask(_UnixConnection(socket_path, timeout), spec.http.health_path, headers)


def wait_socket_healthy(spec: ServiceSpec, socket_path: str, deadline_s: float = 20.0) -> Probe:
    """Retry until 200 or the deadline: the socket queues while gunicorn boots."""
    return _retry(lambda: probe_socket_once(spec, socket_path), deadline_s, 0.3)


def _ask(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> Probe:
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read(200).decode(errors="replace").strip()
        shown = "" if body.startswith("<") else body.splitlines()[0][:120] if body else ""
        return Probe(resp.status == 200, resp.status, f"HTTP {resp.status} {shown}".strip())
    except (OSError, http.client.HTTPException) as exc:
        return Probe(False, 0, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _retry(probe: Callable[[], Probe], deadline_s: float, interval: float) -> Probe:
    end = time.monotonic() + deadline_s
    last = probe()
    while not last.ok and time.monotonic() < end:
        time.sleep(interval)
        last = probe()
    return last
