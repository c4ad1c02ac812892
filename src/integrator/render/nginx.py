"""nginx: one site per service in conf.d (the files all sites share are in nginx_shared.py).

Nothing here touches nginx's global configuration: the site goes into conf.d (read by the
stock nginx.conf on Debian and RHEL alike).

nginx is the edge: what it tells an app about a request (Host, client address, scheme, port)
is set here from the connection and the service's own names, never passed on from a client.
"""

from __future__ import annotations

from ..layout import Layout
from ..slots import SLOTS
from ..spec import ServiceSpec
from .common import HSTS_MAX_AGE_S, SLOT_CONN_LIFE_S, SLOT_IDLE_S, UPSTREAM_IDLE_S, header, proxy_timeout
from .lb import Backends, proxy_tls, upstream_body
from .nginx_acme import acme_challenge
from .nginx_logs import log_directives, log_filter, log_format
from .nginx_static import static_locations
from .nginx_text import INDENT, Version, block, listens

# The template's requestlog.py keeps an incoming X-Request-ID only if it matches this, too.
REQUEST_ID_PATTERN = "[A-Za-z0-9._-]{1,64}"
UPSTREAM_KEEPALIVE = 16  # idle connections each nginx worker keeps open to gunicorn
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)  # `http2 on;`; older nginx wants `listen ... http2`
UPSTREAM_IDLE_TIMEOUT_SINCE = (1, 15, 3)  # `keepalive_timeout` inside upstream{}
UPSTREAM_CONN_LIFE_SINCE = (1, 19, 10)  # `keepalive_time` inside upstream{}


def site(spec: ServiceSpec, layout: Layout, nginx_version: Version, backends: Backends | None = None) -> str:
    """conf.d/NAME.conf: the upstream, an HTTP server that redirects, the HTTPS server. With
    `backends`, a fleet's load balancer: the same site, its upstream the app hosts (render/lb.py);
    else the upstream is the serving link (the same for both slots: a deploy leaves it alone)."""
    lines = header(layout.nginx_site, f"Shared snippets it includes: {layout.nginx_include_dir}/")
    lines += ["", *_ipv6_note()]
    lines += ["", *_upstream(spec, layout, nginx_version, backends)]
    lines += ["", *_names_map(spec)]
    lines += ["", *_request_id_map(spec)]
    lines += ["", *log_format(layout, request_id_variable(spec))]
    lines += ["", *log_filter(log_variable(spec))]
    lines += ["", *_redirect_server(spec, layout)]
    lines += ["", *_https_server(spec, layout, nginx_version, backends)]
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


def _upstream(
    spec: ServiceSpec, layout: Layout, nginx_version: Version, backends: Backends | None
) -> list[str]:
    if backends is not None:  # a fleet's load balancer: the app hosts' nginx
        body = [*upstream_body(spec, backends), f"keepalive {UPSTREAM_KEEPALIVE};"]
        if nginx_version >= UPSTREAM_IDLE_TIMEOUT_SINCE:
            body.append(f"keepalive_timeout {UPSTREAM_IDLE_S}s;")
        return [
            f"# The app hosts; each nginx worker keeps up to {UPSTREAM_KEEPALIVE} idle connections to them.",
            *block(f"upstream {upstream_name(spec)}", body),
        ]
    a, b = layout.slot(SLOTS[0]), layout.slot(SLOTS[1])
    lines = [
        f"# gunicorn, through {layout.upstream_link}: a symlink to the serving slot's socket",
        f"# ({a.socket_path} or {b.socket_path.name}). A deploy starts the other slot and",
        "# repoints the link; new connections follow it, so nginx is not reloaded.",
    ]
    body = [f"server unix:{layout.upstream_link};"]
    if nginx_version >= UPSTREAM_CONN_LIFE_SINCE:
        lines += [
            f"# Each worker keeps up to {UPSTREAM_KEEPALIVE} idle connections (a connect saved per",
            f"# request), closed after {SLOT_IDLE_S}s idle or {SLOT_CONN_LIFE_S}s of use: the old slot has",
            "# none left a few seconds after a deploy, and is stopped then.",
        ]
        body += [
            f"keepalive {UPSTREAM_KEEPALIVE};",
            f"keepalive_timeout {SLOT_IDLE_S}s;",
            f"keepalive_time {SLOT_CONN_LIFE_S}s;",
        ]
    else:
        lines.append("# A connection per request: this nginx cannot cap how long a kept one is used.")
    return [*lines, *block(f"upstream {upstream_name(spec)}", body)]


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
    fallback = _first_exact_name(spec) if spec.http.default_server else ""
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
        if spec.http.default_server
        else 'any other name maps to "" and is refused'
    )
    return [
        "# The service's names. Redirects, Host and X-Forwarded-Host use only these, never what a",
        f"# client sent; {why}.",
        *block(f"map $host {host_variable(spec)}", body),
    ]


def request_id_variable(spec: ServiceSpec) -> str:
    """The request's id, in nginx's access line and in X-Request-ID to the app: one id per request
    in both logs. At most 45 characters (see host_variable)."""
    return f"{host_variable(spec)}_id"


def log_variable(spec: ServiceSpec) -> str:
    """1 where nginx's access line is a request's only one (render/nginx_logs.py `log_filter`).
    At most 46 characters (see host_variable)."""
    return f"{host_variable(spec)}_log"


def _request_id_map(spec: ServiceSpec) -> list[str]:
    """An incoming X-Request-ID that looks harmless (a load balancer's, the same rule as the
    template's requestlog.py) is kept, so one id follows a request across hosts; else nginx's own."""
    return [
        "# The request's id, logged by nginx and passed to the app as X-Request-ID: an incoming",
        "# one if it is 1-64 of [A-Za-z0-9._-] (a load balancer's), else nginx's own $request_id.",
        *block(
            f"map $http_x_request_id {request_id_variable(spec)}",
            ["default $request_id;", f'"~^{REQUEST_ID_PATTERN}$" $http_x_request_id;'],
        ),
    ]


def _regex(name: str) -> str:
    return name.replace(".", "\\.")


def _first_exact_name(spec: ServiceSpec) -> str:
    exact = [n.lower() for n in spec.effective_server_names if n != "_" and not n.startswith("*")]
    return exact[0] if exact else ""


def _port_suffix(spec: ServiceSpec) -> str:
    return "" if spec.http.https_port == 443 else f":{spec.http.https_port}"


def _name_check(spec: ServiceSpec, status: int) -> list[str]:
    return [f'if ({host_variable(spec)} = "") {{', f"{INDENT}return {status};", "}"]


def _redirect_server(spec: ServiceSpec, layout: Layout) -> list[str]:
    body = [
        *listens(spec.http.http_port, spec.http.default_server, ""),
        _server_names(spec),
        "server_tokens off;",
        *log_directives(layout, log_variable(spec)),
        *_name_check(spec, 444),
        "",
        *acme_challenge(layout),
        "",
        *block("location /", [f"return 301 https://{host_variable(spec)}{_port_suffix(spec)}$request_uri;"]),
    ]
    return [
        "# Plain HTTP serves ACME challenges and otherwise a redirect to HTTPS, for the service's",
        "# own names only.",
        *block("server", body),
    ]


def _https_server(
    spec: ServiceSpec, layout: Layout, nginx_version: Version, backends: Backends | None
) -> list[str]:
    new_http2 = nginx_version >= HTTP2_DIRECTIVE_SINCE
    body = [*listens(spec.http.https_port, spec.http.default_server, " ssl" if new_http2 else " ssl http2")]
    body += ["http2 on;"] if new_http2 else []
    body += [
        _server_names(spec),
        "server_tokens off;",
        *log_directives(layout, log_variable(spec)),
    ]
    body += ["", *_tls(spec, layout), "", *_headers(spec, layout)]
    body += ["", "# A Host that is none of the service's names never reaches the app."]
    body += _name_check(spec, 421)
    body += [
        "",
        "# Larger request bodies get 413 from nginx before they reach the app.",
        f"client_max_body_size {spec.http.max_body};",
        "",
        *block("location /", _proxy(spec, layout, backends)),
        *static_locations(spec, layout),
    ]
    return [*block("server", body)]


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
    if not spec.http.hsts:
        return [*lines, "# No HSTS: [http] hsts = false in service.toml."]
    return [
        *lines,
        "# HSTS: browsers use only HTTPS for this name for two years ([http] hsts in service.toml).",
        f'add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE_S}" always;',
    ]


def _proxy(spec: ServiceSpec, layout: Layout, backends: Backends | None) -> list[str]:
    timeout = proxy_timeout(spec)
    authority = host_variable(spec) + _port_suffix(spec)
    return [
        f"proxy_pass {'http' if backends is None else 'https'}://{upstream_name(spec)};",
        *([] if backends is None else proxy_tls(spec, layout)),
        f"include {layout.nginx_proxy_include};",
        "# The name the client asked for (one of ours: see the map), and the port unless it is 443.",
        f"proxy_set_header Host {authority};",
        f"proxy_set_header X-Forwarded-Host {authority};",
        "# The id nginx logs for this request (see the map): the app logs the same one.",
        f"proxy_set_header X-Request-ID {request_id_variable(spec)};",
        '# HTTP/1.1 without "Connection: close" keeps the upstream connections alive.',
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        f"# Longer than gunicorn's timeout ({spec.server.timeout}s): "
        "gunicorn decides when a request took too long.",
        f"proxy_read_timeout {timeout}s;",
        f"proxy_send_timeout {timeout}s;",
    ]
