"""nginx: one site per service in conf.d, plus three snippets shared by all sites.

Nothing here touches nginx's global configuration: the site goes into conf.d (read by the
stock nginx.conf on Debian and RHEL alike) and the snippets live outside it, so they are
only loaded where a site includes them, inside its server{} or location{}.
"""

from __future__ import annotations

from ..layout import Layout
from ..spec import ServiceSpec
from .common import HSTS_MAX_AGE_S, UPSTREAM_IDLE_S, header, proxy_timeout

INDENT = "    "
UPSTREAM_KEEPALIVE = 16  # idle connections each nginx worker keeps open to gunicorn
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)  # `http2 on;`; older nginx wants `listen ... http2`
UPSTREAM_IDLE_TIMEOUT_SINCE = (1, 15, 3)  # `keepalive_timeout` inside upstream{}

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

Version = tuple[int, int, int]


def site(spec: ServiceSpec, layout: Layout, nginx_version: Version) -> str:
    """conf.d/NAME.conf: the upstream, an HTTP server that redirects, the HTTPS server."""
    lines = header(layout.nginx_site, f"Shared snippets it includes: {layout.nginx_include_dir}/")
    lines += ["", *_ipv6_note()]
    lines += ["", *_upstream(spec, layout, nginx_version)]
    lines += ["", *_redirect_server(spec)]
    lines += ["", *_https_server(spec, layout, nginx_version)]
    return "\n".join(lines) + "\n"


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
    """What nginx tells every app about the request: portable, unlike Debian's proxy_params."""
    lines = header("Request headers for every integrator app (included in each location{}).", from_spec=False)
    lines += [
        "# The same four headers as Debian's proxy_params, which RHEL's nginx does not have.",
        "# proxy_set_header lines at an inner level replace all outer ones: sites put their",
        "# own proxy_set_header lines next to this include, in the same block.",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "# gunicorn is on this host: a connect that takes longer is not going to work.",
        "proxy_connect_timeout 5s;",
        "# The app sees the real Host and scheme, so its redirects are already right.",
        "proxy_redirect off;",
    ]
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


# --- the site's parts -----------------------------------------------------------------------


def _ipv6_note() -> list[str]:
    return [
        "# IPv6: each server also listens on [::], like the stock default server of Debian and RHEL.",
        "# Only a kernel booted with ipv6.disable=1 makes that fail (at start: nginx -t does not bind),",
        "# and there the stock nginx configuration fails the same way.",
    ]


def upstream_name(spec: ServiceSpec) -> str:
    """One upstream per service: two sites in one nginx never share or clash on a name."""
    return f"{spec.name}_app"


def _upstream(spec: ServiceSpec, layout: Layout, nginx_version: Version) -> list[str]:
    body = [
        f"server unix:{layout.socket_path};",
        f"keepalive {UPSTREAM_KEEPALIVE};",
    ]
    if nginx_version >= UPSTREAM_IDLE_TIMEOUT_SINCE:
        body.append(f"keepalive_timeout {UPSTREAM_IDLE_S}s;")
    return [
        f"# gunicorn, behind {layout.socket_unit}. Each nginx worker keeps up to {UPSTREAM_KEEPALIVE} idle",
        "# connections to it open, saving a connect per request; gunicorn keeps them a little longer.",
        *_block(f"upstream {upstream_name(spec)}", body),
    ]


def _redirect_server(spec: ServiceSpec) -> list[str]:
    port = "" if spec.https_port == 443 else f":{spec.https_port}"
    body = [
        *_listens(spec.http_port, spec.default_server, ""),
        _server_names(spec),
        "server_tokens off;",
        f"return 301 https://$host{port}$request_uri;",
    ]
    return ["# Plain HTTP serves nothing but a redirect to HTTPS.", *_block("server", body)]


def _https_server(spec: ServiceSpec, layout: Layout, nginx_version: Version) -> list[str]:
    new_http2 = nginx_version >= HTTP2_DIRECTIVE_SINCE
    body = [*_listens(spec.https_port, spec.default_server, " ssl" if new_http2 else " ssl http2")]
    body += ["http2 on;"] if new_http2 else []
    body += [_server_names(spec), "server_tokens off;", "", *_tls(spec, layout), "", *_headers(spec, layout)]
    body += [
        "",
        "# Larger request bodies get 413 from nginx before they reach the app.",
        f"client_max_body_size {spec.max_body};",
        "",
        *_block("location /", _proxy(spec, layout)),
    ]
    return [*_block("server", body)]


def _listens(port: int, default: bool, options: str) -> list[str]:
    suffix = options + (" default_server" if default else "")
    return [f"listen {port}{suffix};", f"listen [::]:{port}{suffix};"]


def _server_names(spec: ServiceSpec) -> str:
    return f"server_name {' '.join(spec.effective_server_names)};"


def _tls(spec: ServiceSpec, layout: Layout) -> list[str]:
    provided = spec.tls.mode == "provided"
    cert = spec.tls.cert if provided else layout.tls_cert
    key = spec.tls.key if provided else layout.tls_key
    origin = (
        "provided ([tls] in service.toml)"
        if provided
        else "self-signed, made on the host at the first deploy"
    )
    return [
        f"# Certificate and key: {origin}.",
        f"ssl_certificate {cert};",
        f"ssl_certificate_key {key};",
        f"include {layout.nginx_tls_include};",
    ]


def _headers(spec: ServiceSpec, layout: Layout) -> list[str]:
    lines = [
        "# Every response header is added here, at server level: an add_header inside a",
        "# location{} would silently drop all of these for that location.",
        f"include {layout.nginx_headers_include};",
    ]
    if not spec.hsts:
        return [*lines, "# No HSTS: [http] hsts = false in service.toml."]
    return [
        *lines,
        "# HSTS: browsers use only HTTPS for this name for two years ([http] hsts in service.toml).",
        f'add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE_S}" always;',
    ]


def _proxy(spec: ServiceSpec, layout: Layout) -> list[str]:
    timeout = proxy_timeout(spec)
    return [
        f"proxy_pass http://{upstream_name(spec)};",
        f"include {layout.nginx_proxy_include};",
        '# HTTP/1.1 without "Connection: close" keeps the upstream connections alive.',
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        f"# Longer than gunicorn's timeout ({spec.timeout}s): gunicorn decides when a request took too long.",
        f"proxy_read_timeout {timeout}s;",
        f"proxy_send_timeout {timeout}s;",
    ]


def _block(opening: str, body: list[str]) -> list[str]:
    """`opening { ... }` with the body indented; blank lines stay blank."""
    return [f"{opening} {{", *((INDENT + line) if line else "" for line in body), "}"]
