"""nginx is the edge (issue 8, finding 7): client headers and unknown host names never reach an app.

The rendered text is checked for what it sets and clears, then the real nginx runs it on
127.0.0.1 in a temporary prefix, in front of an upstream that echoes the headers it got: a
client's X-Forwarded-* lies, unknown names in SNI or Host, and plain HTTP for a made-up name.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath

import pytest

from integrator.host.fs import FileWriter
from integrator.host.nginxconf import unused_catch_alls
from integrator.host.system import System
from integrator.layout import Layout
from integrator.render import render_all
from integrator.render.nginx import site
from integrator.render.nginx_shared import CLEARED_HEADERS, catch_all, proxy_include
from integrator.spec import ServiceSpec

from .render_checks import (
    DEFAULT,
    RootedLayout,
    install_certificate,
    main_conf,
    need_tool,
    nginx_prefix,
    nginx_test,
    nginx_version,
    self_signed,
)
from .spec_edit import edit

# --- the rendered text --------------------------------------------------------------------------


def _directives(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_every_forwarding_header_is_set_by_nginx_or_dropped() -> None:
    lines = _directives(proxy_include())
    sets = [line.split(None, 2) for line in lines if line.startswith("proxy_set_header ")]
    headers = {name: value.rstrip(";") for _, name, value in sets}
    assert headers["X-Forwarded-For"] == "$remote_addr"  # not appended to what the client sent
    assert headers["X-Real-IP"] == "$remote_addr"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-Port"] == "$server_port"
    for name in ("Forwarded", "X-Forwarded-Prefix", "X-Forwarded-Ssl", *CLEARED_HEADERS):
        assert headers[name] == '""', name
    assert not any("$http_" in value or "$proxy_add" in value for value in headers.values())


def test_host_and_redirects_come_from_the_services_own_names() -> None:
    spec = edit(DEFAULT.spec, http={"server_names": ("Shop.example.com", "*.shop.example.com", "_")})
    text = site(spec, Layout.for_spec(spec), (1, 22, 1))
    assert "$host$" not in text and "https://$host" not in text and "$http_host" not in text
    assert re.search(r"return 301 https://\$integrator_demo\$request_uri;", text)
    assert "proxy_set_header Host $integrator_demo;" in text
    assert "proxy_set_header X-Forwarded-Host $integrator_demo;" in text
    names = re.search(r"map \$host \$integrator_demo \{(.*?)\}", text, re.S)
    assert names and _directives(names.group(1)) == [
        'default "";',
        "~^shop\\.example\\.com$ shop.example.com;",
        "~^.+\\.shop\\.example\\.com$ $host;",
    ]
    assert text.count('if ($integrator_demo = "")') == 2  # 444 on HTTP, 421 on HTTPS


def test_a_default_server_presents_unknown_names_as_its_first_name() -> None:
    spec = edit(DEFAULT.spec, http={"server_names": ("*.a.example", "b.example"), "default_server": True})
    assert 'default "b.example";' in site(spec, Layout.for_spec(spec), (1, 22, 1))


def test_a_non_standard_port_survives_in_host_and_redirect() -> None:
    spec = edit(DEFAULT.spec, http={"https_port": 8443})
    text = site(spec, Layout.for_spec(spec), (1, 22, 1))
    assert "proxy_set_header Host $integrator_demo:8443;" in text
    assert "return 301 https://$integrator_demo:8443$request_uri;" in text


def test_the_catch_all_is_one_file_per_port_whatever_the_service() -> None:
    other = edit(DEFAULT.spec, service={"name": "reports"}, http={"server_names": ("reports.example.com",)})

    def shared(spec: ServiceSpec) -> dict[PurePosixPath, str]:
        files = render_all(spec, Layout.for_spec(spec), "r1")
        return {f.path: f.content for f in files if f.path.name.startswith("00-integrator-catch-all-")}

    assert shared(DEFAULT.spec) == shared(other)
    inc = Layout.for_spec(DEFAULT.spec).nginx_tls_include
    https = catch_all(443, True, (1, 22, 1), inc)
    assert https and "ssl_reject_handshake on;" in https and "return 421;" in https
    both = https + str(catch_all(80, False, (1, 22, 1), inc))
    listens = [line for line in _directives(both) if line.startswith("listen")]
    assert listens and not any("default_server" in line for line in listens)
    # nginx 1.18 (Ubuntu 22.04) cannot refuse a handshake without a certificate: no TLS catch-all
    # there (the site's own name check answers 421); plain HTTP still gets one.
    assert catch_all(443, True, (1, 18, 0), inc) is None and catch_all(80, False, (1, 18, 0), inc)


def test_the_longest_service_name_passes_nginx_t(tmp_path: Path) -> None:
    """A service name may have 31 characters; the names map's variable must still fit nginx's
    default variables_hash_bucket_size (64: names of at most 46 characters)."""
    nginx = need_tool("nginx", "run scripts/install-nginx.sh as root")
    cert = self_signed(tmp_path / "tls", need_tool("openssl", "apt-get install openssl"))
    conf = nginx_prefix(tmp_path, "debian", stock_default=False)
    spec = edit(
        DEFAULT.spec, service={"name": "n" * 31}, http={"server_names": ("long.example",), "http_port": 8080}
    )
    layout = RootedLayout.below(tmp_path, spec, "debian")
    install_certificate(layout, *cert)
    for f in render_all(spec, layout, "R1", nginx_version=nginx_version(nginx)):
        if str(f.path).startswith(str(tmp_path)):
            Path(f.path).parent.mkdir(parents=True, exist_ok=True)
            Path(f.path).write_text(f.content, encoding="utf-8")
    result = nginx_test(nginx, tmp_path, conf)
    assert result.returncode == 0, result.stderr


# --- the host keeps a catch-all while a site uses its port --------------------------------------


def test_uninstall_keeps_catch_alls_in_use_and_lists_the_rest(tmp_path: Path) -> None:
    system, writer = System(tmp_path), FileWriter(System(tmp_path))
    one = DEFAULT.spec
    two = edit(
        one, service={"name": "reports"}, http={"server_names": ("reports.example.com",), "https_port": 8443}
    )
    for spec in (one, two):
        writer.put_rendered(render_all(spec, Layout.for_spec(spec), "r1"))
    layout_two = Layout.for_spec(two)
    assert unused_catch_alls(system, layout_two) == []
    writer.remove(layout_two.nginx_site)
    assert unused_catch_alls(system, layout_two) == [layout_two.nginx_catch_all(8443, tls=True)]
    writer.remove(Layout.for_spec(one).nginx_site)
    assert sorted(map(str, unused_catch_alls(system, layout_two))) == [
        "/etc/nginx/conf.d/00-integrator-catch-all-http-80.conf",
        "/etc/nginx/conf.d/00-integrator-catch-all-https-443.conf",
        "/etc/nginx/conf.d/00-integrator-catch-all-https-8443.conf",
    ]


# --- the real nginx on 127.0.0.1 -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LocalLayout(RootedLayout):
    """Also the app's socket and the serving link below the prefix: an echo server stands in
    for gunicorn."""

    @property
    def runtime_dir(self) -> PurePosixPath:
        return PurePosixPath(self.prefix) / "run" / self.name

    @property
    def upstream_link(self) -> PurePosixPath:
        return PurePosixPath(self.prefix) / "opt" / self.name / "serving.sock"


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: object) -> None:
        pass


class _UnixEcho(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Edge:
    http_port: int
    https_port: int


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    """nginx (in front of two echo apps, demo.example and reports.example, both on one pair of
    non-standard ports) listening on 127.0.0.1 only."""
    nginx = need_tool("nginx", "run scripts/install-nginx.sh as root")
    cert = self_signed(tmp_path / "tls", need_tool("openssl", "apt-get install openssl"))
    ports = Edge(_free_port(), _free_port())
    conf = nginx_prefix(tmp_path, "debian", stock_default=False)
    # Workers as this user: they connect to the echo sockets in this test's private directory.
    main = re.sub(r"^user .*$", "", main_conf(tmp_path, "debian", stock_default=False), flags=re.M)
    conf.write_text(("user root root;\n" if os.geteuid() == 0 else "") + main, encoding="utf-8")
    servers = []
    for name in ("demo", "reports"):
        spec = edit(
            DEFAULT.spec,
            service={"name": name},
            http={
                "server_names": (f"{name}.example", f"*.{name}.example"),
                "http_port": ports.http_port,
                "https_port": ports.https_port,
            },
        )
        layout = LocalLayout.below(tmp_path, spec, "debian")
        install_certificate(layout, *cert)
        Path(layout.slot("a").socket_path).parent.mkdir(parents=True)
        server = _UnixEcho(str(layout.slot("a").socket_path), _Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        for f in render_all(spec, layout, "R1", nginx_version=nginx_version(nginx)):
            if str(f.path).startswith(str(tmp_path)):
                text = re.sub(r"^\s*listen \[::\].*\n", "", f.content, flags=re.M)  # 127.0.0.1 only
                text = re.sub(r"listen (\d+)", r"listen 127.0.0.1:\1", text)
                Path(f.path).parent.mkdir(parents=True, exist_ok=True)
                Path(f.path).write_text(text, encoding="utf-8")
        link = Path(layout.upstream_link)  # nginx connects through the serving link, as on a host
        assert link.is_relative_to(tmp_path)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(layout.slot("a").socket_path)
    checked = nginx_test(nginx, tmp_path, conf)
    assert checked.returncode == 0, checked.stderr
    argv = [nginx, "-p", f"{tmp_path}/", "-c", str(conf), "-e", str(tmp_path / "error.log")]
    proc = subprocess.Popen([*argv, "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ports.https_port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


def _https(
    port: int, sni: str | None, headers: dict[str, str], path: str = "/"
) -> tuple[int, dict[str, object]]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), 5)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.sock = ctx.wrap_socket(raw, server_hostname=sni)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if resp.status == 200 else {}
    finally:
        conn.close()


def _echoed_headers(echoed: dict[str, object]) -> dict[str, object]:
    """The request headers the echo app saw, by lower-case name."""
    headers = echoed["headers"]
    assert isinstance(headers, dict), echoed
    return {k.lower(): v for k, v in headers.items()}


def test_a_handshake_without_a_known_name_is_refused(edge: Edge) -> None:
    for sni in (None, "attacker.example"):
        with pytest.raises(ssl.SSLError):
            _https(edge.https_port, sni, {"Host": "demo.example"})


def test_a_known_name_in_the_handshake_and_another_in_host_is_misdirected(edge: Edge) -> None:
    status, echoed = _https(edge.https_port, "demo.example", {"Host": "attacker.example"})
    assert (status, echoed) == (421, {})


def test_the_app_sees_nginx_headers_never_the_clients(edge: Edge) -> None:
    lies = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "1.2.3.4",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Port": "1",
        "X-Forwarded-Prefix": "/evil",
        "X-Forwarded-Server": "evil.example",
        "X-Forwarded-Ssl": "off",
        "Forwarded": "for=1.2.3.4;host=evil.example;proto=http",
        "X-Real-IP": "1.2.3.4",
    }
    for name in ("demo", "reports"):
        status, echoed = _https(edge.https_port, f"{name}.example", {"Host": f"{name}.example", **lies})
        assert status == 200
        got = _echoed_headers(echoed)
        authority = f"{name}.example:{edge.https_port}"  # a non-443 port survives
        assert got["host"] == got["x-forwarded-host"] == authority
        assert got["x-forwarded-for"] == got["x-real-ip"] == "127.0.0.1"
        assert got["x-forwarded-proto"] == "https" and got["x-forwarded-port"] == str(edge.https_port)
        for cleared in ("x-forwarded-prefix", "x-forwarded-server", "x-forwarded-ssl", "forwarded"):
            assert cleared not in got, cleared


def _http(port: int, host: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/some/path?q=1", headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Location", "")
    finally:
        conn.close()


def test_plain_http_redirects_only_the_services_own_names(edge: Edge) -> None:
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):  # 444: no answer
        _http(edge.http_port, "attacker.example")
    assert _http(edge.http_port, "demo.example") == (
        301,
        f"https://demo.example:{edge.https_port}/some/path?q=1",
    )


def test_a_wildcard_name_reaches_its_app_as_the_name_asked_for(edge: Edge) -> None:
    status, echoed = _https(edge.https_port, "eu.reports.example", {"Host": "EU.Reports.example"})
    assert status == 200
    got = _echoed_headers(echoed)
    assert got["host"] == f"eu.reports.example:{edge.https_port}"


def test_the_app_gets_the_request_id_nginx_logs(edge: Edge) -> None:
    """nginx's own id when the client sent none or a malformed one; a well-formed one (a load
    balancer's) is kept. The access line logs the same variable (tests/test_render_logs.py)."""
    ids = []
    for sent in ({}, {"X-Request-ID": "bad id/../x"}, {"X-Request-ID": "x" * 65}):
        status, echoed = _https(edge.https_port, "demo.example", {"Host": "demo.example", **sent})
        assert status == 200
        ids.append(_echoed_headers(echoed)["x-request-id"])
    assert all(re.fullmatch(r"[0-9a-f]{32}", str(i)) for i in ids) and len(set(ids)) == 3, ids
    status, echoed = _https(
        edge.https_port, "demo.example", {"Host": "demo.example", "X-Request-ID": "lb-1.a_b"}
    )
    assert _echoed_headers(echoed)["x-request-id"] == "lb-1.a_b"
