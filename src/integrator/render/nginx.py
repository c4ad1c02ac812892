"""nginx: one site per service in conf.d, three snippets shared by all sites, and a catch-all
server per port that no client-chosen name gets past.

Nothing here touches nginx's global configuration: the site and the catch-alls go into conf.d
(read by the stock nginx.conf on Debian and RHEL alike) and the snippets live outside it, so
they are only loaded where a site includes them, inside its server{} or location{}.

nginx is the edge: what it tells an app about a request (Host, client address, scheme, port)
is set here from the connection and the service's own names, never passed on from a client.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..layout import Layout
from ..spec import ServiceSpec
from .common import HSTS_MAX_AGE_S, UPSTREAM_IDLE_S, header, proxy_timeout

INDENT = "    "
UPSTREAM_KEEPALIVE = 16  # idle connections each nginx worker keeps open to gunicorn
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)  # `http2 on;`; older nginx wants `listen ... http2`
UPSTREAM_IDLE_TIMEOUT_SINCE = (1, 15, 3)  # `keepalive_timeout` inside upstream{}
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

Version = tuple[int, int, int]


def site(spec: ServiceSpec, layout: Layout, nginx_version: Version) -> str:
    """conf.d/NAME.conf: the upstream, an HTTP server that redirects, the HTTPS server."""
    lines = header(layout.nginx_site, f"Shared snippets it includes: {layout.nginx_include_dir}/")
    lines += ["", *_ipv6_note()]
    lines += ["", *_upstream(spec, layout, nginx_version)]
    lines += ["", *_names_map(spec)]
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
    body = [*_listens(port, False, " ssl" if tls else ""), "server_tokens off;"]
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
    lines += ["", *_block("server", body)]
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


def host_variable(spec: ServiceSpec) -> str:
    """The nginx variable holding the request's name if it is one of the service's, else "".
    At most 42 characters (names have 31): nginx's default variables_hash_bucket_size (64)
    holds variable names of up to 46."""
    return f"$integrator_{spec.name}"


def _names_map(spec: ServiceSpec) -> list[str]:
    """Host -> the service's own name: the only source of a redirect target and of Host.

    Regular expressions, not `hostnames` keys: those go into a hash whose default bucket
    (map_hash_bucket_size 64) holds no name longer than about 46 characters, and names may
    have 253. The spec allows only letters, digits, '.', '-' and a leading '*.', so escaping
    the dots is all a name needs; `$host` is already lower case."""
    fallback = _first_exact_name(spec) if spec.default_server else ""
    body = [f'default "{fallback}";']
    for name in spec.effective_server_names:
        if name == "_":  # nginx's "no name": matches no Host
            continue
        low = name.lower()
        if low.startswith("*."):  # nginx's wildcard: any name ending in .rest
            body.append(f"~^.+{_regex(low[1:])}$ $host;")
        else:
            body.append(f"~^{_regex(low)}$ {low};")
    why = (
        "any other name is answered as the first one (default_server = true)"
        if spec.default_server
        else 'any other name maps to "" and is refused'
    )
    return [
        "# The service's names. Redirects, Host and X-Forwarded-Host use only these, never what a",
        f"# client sent; {why}.",
        *_block(f"map $host {host_variable(spec)}", body),
    ]


def _regex(name: str) -> str:
    return name.replace(".", "\\.")


def _first_exact_name(spec: ServiceSpec) -> str:
    exact = [n.lower() for n in spec.effective_server_names if n != "_" and not n.startswith("*")]
    return exact[0] if exact else ""


def _port_suffix(spec: ServiceSpec) -> str:
    return "" if spec.https_port == 443 else f":{spec.https_port}"


def _name_check(spec: ServiceSpec, status: int) -> list[str]:
    return [f'if ({host_variable(spec)} = "") {{', f"{INDENT}return {status};", "}"]


def _redirect_server(spec: ServiceSpec) -> list[str]:
    body = [
        *_listens(spec.http_port, spec.default_server, ""),
        _server_names(spec),
        "server_tokens off;",
        *_name_check(spec, 444),
        f"return 301 https://{host_variable(spec)}{_port_suffix(spec)}$request_uri;",
    ]
    return [
        "# Plain HTTP serves nothing but a redirect to HTTPS, for the service's own names only.",
        *_block("server", body),
    ]


def _https_server(spec: ServiceSpec, layout: Layout, nginx_version: Version) -> list[str]:
    new_http2 = nginx_version >= HTTP2_DIRECTIVE_SINCE
    body = [*_listens(spec.https_port, spec.default_server, " ssl" if new_http2 else " ssl http2")]
    body += ["http2 on;"] if new_http2 else []
    body += [_server_names(spec), "server_tokens off;", "", *_tls(spec, layout), "", *_headers(spec, layout)]
    body += ["", "# A Host that is none of the service's names never reaches the app."]
    body += _name_check(spec, 421)
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
    origin = {
        "provided": "provided ([tls] in service.toml)",
        "local-ca": "issued on the host by its local CA, renewed by a deploy",
    }.get(spec.tls.mode, "self-signed, made on the host at the first deploy")
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
    authority = host_variable(spec) + _port_suffix(spec)
    return [
        f"proxy_pass http://{upstream_name(spec)};",
        f"include {layout.nginx_proxy_include};",
        "# The name the client asked for (one of ours: see the map), and the port unless it is 443.",
        f"proxy_set_header Host {authority};",
        f"proxy_set_header X-Forwarded-Host {authority};",
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
