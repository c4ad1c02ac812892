"""The load balancer's side of a fleet: the same site as one host (render/nginx.py `site`), but
its upstream is the app hosts' own nginx over HTTPS instead of gunicorn's socket.

Passive health: a host that fails `MAX_FAILS` times in `FAIL_TIMEOUT_S` is left out for that
long. A host being deployed is drained explicitly: marked `down` here, nginx reloaded (the old
workers finish their requests and exit). nginx retries an idempotent request on the next host
when a connection fails; a POST already sent is never retried (`non_idempotent` stays off).

The app hosts are verified against the host's local CA when the spec says `local-ca` (the
fleet places one CA on every host); otherwise the certificate is not checked, which is only
right on a private network between the LB and the app hosts (docs/fleet.md).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..errors import UsageError
from ..layout import Layout
from ..spec import ServiceSpec, check_name

MAX_FAILS = 2
FAIL_TIMEOUT_S = 10
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")  # matched whole


def check_backend(address: str) -> str:
    """An app host as the LB's upstream names it: an IP address or a host name, nothing else."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    if not HOST_RE.fullmatch(address):
        raise UsageError(f"backend {address[:80]!r} is not an IP address or host name")
    return address


@dataclass(frozen=True)
class Backends:
    """The app hosts behind the LB, in inventory order, and those drained (`down`)."""

    hosts: tuple[str, ...]
    down: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for host in (*self.hosts, *self.down):
            check_backend(host)
        if not self.hosts:
            raise UsageError("a load balancer needs at least one backend (--backend ADDRESS)")
        if len(set(self.hosts)) != len(self.hosts):
            raise UsageError("a backend is named twice")
        unknown = sorted(self.down - set(self.hosts))
        if unknown:
            raise UsageError(f"--down {unknown[0]}: not one of the backends")


def _server(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def upstream_body(spec: ServiceSpec, backends: Backends) -> list[str]:
    """The `server` lines of the LB's upstream: every app host, drained ones marked `down`."""
    lines = [
        f"# The app hosts' nginx (HTTPS, port {spec.http.https_port}). Left out for {FAIL_TIMEOUT_S}s after"
        f" {MAX_FAILS} failures;",
        "# `down`: drained for a deploy (integrator fleet).",
    ]
    for host in backends.hosts:
        state = " down" if host in backends.down else ""
        passive = f"max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT_S}s"
        lines.append(f"server {_server(host)}:{spec.http.https_port} {passive}{state};")
    return lines


def proxy_tls(spec: ServiceSpec, layout: Layout) -> list[str]:
    """How the LB speaks TLS to an app host: its service name as SNI, verified when a CA is shared."""
    lines = [
        "# TLS to the app hosts, with the service's name (their nginx refuses a handshake without it).",
        "proxy_ssl_server_name on;",
        f"proxy_ssl_name {check_name(spec)};",
        "proxy_ssl_protocols TLSv1.2 TLSv1.3;",
        "proxy_ssl_session_reuse on;",
    ]
    if spec.tls.mode == "local-ca":
        return [
            *lines,
            "# Verified against the fleet's CA, placed on every host as the local CA.",
            "proxy_ssl_verify on;",
            f"proxy_ssl_trusted_certificate {layout.local_ca_cert};",
            "proxy_ssl_verify_depth 2;",
        ]
    return [
        *lines,
        f"# Not verified ([tls] mode = {spec.tls.mode}): a private network only.",
        "proxy_ssl_verify off;",
    ]
