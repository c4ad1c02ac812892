"""Read the host's loaded nginx configuration (`nginx -T`) before changing it.

Two clashes pass `nginx -t` yet break a deploy: a second `default_server` for a port (Debian's
stock site already is the default for port 80), which fails only when written; and a server
name another site already serves on our ports, which nginx merely warns about and then sends
that name's requests to the other site, where a health check could even pass. Both are
refused up front, naming the other file; configuration we do not own is never changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import HostError
from ..layout import CATCH_ALL_PREFIX, Layout
from ..spec import ServiceSpec
from .system import System

FILE_HEADER = re.compile(r"^# configuration file (?P<path>\S+):\s*$")
TOKEN = re.compile(r"\{|\}|;|[^{};]+")
CATCH_ALL_NAME = re.compile(rf"^{CATCH_ALL_PREFIX}(?P<kind>https?)-(?P<port>[0-9]{{1,5}})\.conf$")


@dataclass
class Server:
    """One server{} block: the file it is in, its ports, names, and default-server ports."""

    path: str
    ports: set[int] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    default_ports: set[int] = field(default_factory=set)
    tls_ports: set[int] = field(default_factory=set)


def parse_servers(dump: str) -> list[Server]:
    """server{} blocks of `nginx -T` output: statements split on `;`, `{` and `}` (so one-line
    blocks and directives spanning lines both work), comments dropped."""
    servers: list[Server] = []
    stack: list[str] = []  # names of the enclosing blocks: http, server, location, ...
    path, statement = "", ""
    for raw in dump.splitlines():
        header = FILE_HEADER.match(raw)
        if header:
            path, stack, statement = header["path"], [], ""
            continue
        for token in TOKEN.findall(raw.split("#", 1)[0]):
            if token == "{":
                stack.append(statement.split()[0] if statement.split() else "")
                if stack == ["http", "server"] or stack == ["server"]:
                    servers.append(Server(path))
            elif token == "}":
                stack = stack[:-1]
            elif token == ";":
                if stack and stack[-1] == "server" and servers and servers[-1].path == path:
                    _read_directive(servers[-1], statement.split())
            else:
                statement += " " + token
                continue
            statement = ""
    return servers


def _read_directive(server: Server, words: list[str]) -> None:
    if len(words) < 2:
        return
    name, args = words[0], words[1:]
    if name == "server_name":
        server.names.update(args)
    elif name == "listen":
        port = _port(args[0])
        if port is not None:
            server.ports.add(port)
            if "default_server" in args[1:]:
                server.default_ports.add(port)
            if "ssl" in args[1:]:
                server.tls_ports.add(port)


def _port(address: str) -> int | None:
    """`80`, `[::]:80`, `0.0.0.0:443`, `*:80`, `localhost` (80); unix sockets have none."""
    if address.startswith("unix:"):
        return None
    tail = address.rsplit("]:", 1)[-1] if address.startswith("[") else address.rsplit(":", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return 80 if not address.startswith("[") else None


def clashes(servers: list[Server], spec: ServiceSpec, own_file: str) -> list[str]:
    """Why our site cannot share this nginx with the others (empty: it can)."""
    ports = {spec.http.http_port, spec.http.https_port}
    names = set(spec.effective_server_names)
    problems: list[str] = []
    for other in servers:
        if other.path == own_file:
            continue
        for port in sorted(ports & other.ports):
            shared = sorted(names & other.names)
            if shared:
                problems.append(f"{other.path} already serves {', '.join(shared)} on port {port}")
            if spec.http.default_server and port in other.default_ports:
                problems.append(f"{other.path} already is nginx's default server for port {port}")
    return problems


def check_site_fits(system: System, spec: ServiceSpec, layout: Layout) -> None:
    """Refuse, before any change, a site that would clash with another site on this host."""
    proc = system.run(["nginx", "-T", "-q"], check=False)
    if not proc.ok:
        return  # an invalid config is reported by `nginx -t` during activation
    problems = clashes(parse_servers(proc.stdout), spec, str(layout.nginx_site))
    if problems:
        raise HostError(
            f"{spec.name}'s nginx site would clash: {'; '.join(dict.fromkeys(problems))} "
            "(change [http] server_names / default_server in service.toml, or that site)"
        )


def integrator_sites(system: System, layout: Layout) -> tuple[dict[str, str], tuple[str, ...]]:
    """conf.d as catch-alls need it: the sites that use integrator's includes (file name -> text)
    and the names of the catch-all files there."""
    conf_d = system.path(layout.nginx_site.parent)
    marker = str(layout.nginx_include_dir)
    sites = {}
    for p in sorted(conf_d.glob("*.conf")):
        if p.is_file() and not CATCH_ALL_NAME.match(p.name):
            text = p.read_text(errors="replace")
            if marker in text:
                sites[p.name] = text
    return sites, tuple(p.name for p in sorted(conf_d.glob(f"{CATCH_ALL_PREFIX}*.conf")))


def unused_catch_alls_of(
    sites: dict[str, str], catch_alls: tuple[str, ...], layout: Layout
) -> list[PurePosixPath]:
    """Pure: catch-all files (render/nginx_shared.catch_all) for a port none of `sites` listens on:
    kept while one does, removed with the last."""
    dump = "".join(f"# configuration file {name}:\n{text}\n" for name, text in sorted(sites.items()))
    used = set()
    for server in parse_servers(dump):
        used |= {(port, port in server.tls_ports) for port in server.ports}
    unused = []
    for name in catch_alls:
        found = CATCH_ALL_NAME.match(name)
        if found and (int(found["port"]), found["kind"] == "https") not in used:
            unused.append(layout.nginx_site.parent / name)
    return unused


def unused_catch_alls(system: System, layout: Layout) -> list[PurePosixPath]:
    """The catch-alls no integrator site on this host uses any more (uninstall)."""
    return unused_catch_alls_of(*integrator_sites(system, layout), layout)
