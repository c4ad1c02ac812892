"""nginx files shared by every integrator site: three snippets the sites include (TLS,
proxy headers, security headers) and the catch-all server per port that no client-chosen name
gets past. The snippets live outside conf.d, so they are only loaded where a site includes
them, inside its server{} or location{}.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .common import header
from .nginx_text import Version, block, listens

REJECT_HANDSHAKE_SINCE = (1, 19, 4)  # `ssl_reject_handshake`: a TLS server{} without certificate
# Forwarding headers nginx never sets: an empty value drops whatever a client sent.
CLEARED_HEADERS = (
    "Forwarded",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Forwarded-Protocol",
    "X-Forwarded-Scheme",
)


MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


def tls_include() -> str:
    """Mozilla "intermediate" TLS (guideline 6.0), measured compliant with sslyze."""
    lines = header(
        "TLS settings for every integrator site (included in each HTTPS server{}).", from_spec=False
    )
    lines += [
        '# Mozilla "intermediate" profile (ssl-config.mozilla.org): TLS 1.2 and 1.3, AEAD suites with',
        "# forward secrecy only; the client picks among them.",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        f"ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};",
        "ssl_prefer_server_ciphers off;",
        "# Without this OpenSSL 3 also offers secp521r1 and X448, which the profile leaves out.",
        "ssl_ecdh_curve X25519:prime256v1:secp384r1;",
        "",
        "# Resumed sessions skip the full handshake. Every site includes this file, so the cache",
        "# is declared once per site with the same name and size: nginx then shares one zone.",
        "ssl_session_timeout 1d;",
        "ssl_session_cache shared:integrator_tls:10m;",
        "# nginx never rotates session ticket keys itself: tickets would undo forward secrecy.",
        "ssl_session_tickets off;",
        "# No OCSP stapling: self-signed and internal-CA certificates have no responder to ask.",
    ]
    return "\n".join(lines) + "\n"


def proxy_include() -> str:
    """What nginx tells every app about the request: set from the connection, never relayed."""
    lines = header("Request headers for every integrator app (included in each location{}).", from_spec=False)
    lines += [
        "# Debian's proxy_params, which RHEL's nginx does not have, minus its trust in the client:",
        "# nginx is the edge, so every forwarding header is set here or dropped. proxy_set_header",
        "# lines at an inner level replace all outer ones: sites put their own proxy_set_header",
        "# lines next to this include, in the same block: Host and X-Forwarded-Host, made from",
        "# the service's own names (never the client's), and Connection.",
        "proxy_set_header X-Real-IP $remote_addr;",
        "# The peer's address alone, not appended to a list the client started.",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Port $server_port;",
        "# Set by nobody here: an empty value drops what a client sent. Headers spelled with",
        "# underscores (X_Forwarded_Host) never pass: nginx drops them (underscores_in_headers off).",
        *(f'proxy_set_header {name} "";' for name in CLEARED_HEADERS),
        "# gunicorn is on this host: a connect that takes longer is not going to work.",
        "proxy_connect_timeout 5s;",
        "# The app sees its own host name, port and scheme, so its redirects are already right.",
        "proxy_redirect off;",
    ]
    return "\n".join(lines) + "\n"


def catch_all(port: int, tls: bool, nginx_version: Version, tls_include: PurePosixPath) -> str | None:
    """conf.d/00-integrator-catch-all-*.conf: the server for names no site on `port` serves.

    One file per port and kind, whatever the service: two services on one port render the same
    bytes. It is not `default_server` (Debian's stock site already is on port 80, and a site
    with `default_server = true` takes over on purpose); its name sorts before every site in
    conf.d (service names start with a letter), and nginx takes the first server of a port as
    its default. None for a TLS port before nginx 1.19.4, which cannot refuse a handshake
    without a certificate: there the sites' own name check (421) is what stands.
    """
    if tls and nginx_version < REJECT_HANDSHAKE_SINCE:
        return None
    kind = "HTTPS" if tls else "Plain HTTP"
    lines = header(
        f"{kind} on port {port}: requests for a name no integrator site serves end here.",
        from_spec=False,
    )
    lines += [
        "# nginx's default server for the port: it sorts before every site in conf.d. An",
        "# integrator site with default_server = true, or a site of yours that is, wins instead.",
    ]
    body = [*listens(port, False, " ssl" if tls else ""), "server_tokens off;"]
    if tls:
        body += [
            "# No certificate: a handshake for an unknown name (or none: the bare address) fails.",
            "ssl_reject_handshake on;",
            "# The port's handshake settings come from this default server, before SNI picks a",
            "# site: the same Mozilla-intermediate versions, ciphers and curves as every site.",
            f"include {tls_include};",
            "# A known name in the handshake but another in Host: 421 Misdirected Request.",
            "return 421;",
        ]
    else:
        body += ["# 444: close the connection without an answer (no redirect, no page).", "return 444;"]
    lines += ["", *block("server", body)]
    return "\n".join(lines) + "\n"


def security_headers_include() -> str:
    """Response headers for every site; included at server{} level, never in a location."""
    lines = header(
        "Response security headers for every integrator site (included in server{}).", from_spec=False
    )
    lines += [
        "# An add_header inside a location{} drops every inherited one: sites add none there.",
        "# `always`: error responses (4xx/5xx) carry them too.",
        'add_header X-Content-Type-Options "nosniff" always;',
        "# Nobody may frame the app (X-Frame-Options for old browsers). An app serving HTML",
        "# should send its own full Content-Security-Policy; browsers enforce both.",
        'add_header X-Frame-Options "DENY" always;',
        "add_header Content-Security-Policy \"frame-ancestors 'none'\" always;",
        'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
        'add_header Cross-Origin-Opener-Policy "same-origin" always;',
    ]
    return "\n".join(lines) + "\n"
