"""Read the host's loaded nginx configuration (`nginx -T`) before changing it.

Only one server per port may be `default_server`. Debian's stock site already is the default
for port 80, so a spec asking for `default_server = true` would fail `nginx -t` mid-deploy; we
say so up front, naming the file, and change nothing in configuration we do not own.
"""

from __future__ import annotations

import re

from ..errors import HostError
from ..layout import Layout
from ..spec import ServiceSpec
from .system import System

FILE_HEADER = re.compile(r"^# configuration file (?P<path>\S+):\s*$")
LISTEN = re.compile(r"^\s*listen\s+(?P<args>[^;#]+);")


def parse_default_servers(dump: str) -> list[tuple[str, int]]:
    """(file, port) for every `listen ... default_server` in `nginx -T` output."""
    found: list[tuple[str, int]] = []
    current = ""
    for line in dump.splitlines():
        header = FILE_HEADER.match(line)
        if header:
            current = header["path"]
            continue
        match = LISTEN.match(line)
        if not match:
            continue
        args = match["args"].split()
        port = _port(args[0])
        if port is not None and "default_server" in args[1:]:
            found.append((current, port))
    return found


def _port(address: str) -> int | None:
    """`80`, `[::]:80`, `0.0.0.0:443`, `*:80`, `localhost` (80); unix sockets have none."""
    if address.startswith("unix:"):
        return None
    tail = address.rsplit("]:", 1)[-1] if address.startswith("[") else address.rsplit(":", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return 80 if not address.startswith("[") else None


def check_default_server(system: System, spec: ServiceSpec, layout: Layout) -> None:
    """Refuse `default_server = true` where another site already holds one of our ports."""
    if not spec.default_server:
        return
    proc = system.run(["nginx", "-T", "-q"], check=False)
    if not proc.ok:
        return  # an invalid config is reported by `nginx -t` during activation
    ours = str(layout.nginx_site)
    ports = {spec.http_port, spec.https_port}
    for path, port in parse_default_servers(proc.stdout):
        if path != ours and port in ports:
            raise HostError(
                f"[http] default_server = true, but {path} already is nginx's default server for "
                f"port {port}: disable that site or set default_server = false"
            )
