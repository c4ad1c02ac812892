"""Pure renderers: a service spec (and its host layout) in, the text of every config file out.

Nothing in this package reads or writes a host: `render_all` is what `render`, `plan` and
`deploy` all call, so a plan shows exactly the bytes a deploy writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from ..layout import Layout
from ..slots import SLOTS
from ..spec import ServiceSpec
from . import gunicorn, nginx, nginx_shared, processes, systemd, tls_watch
from .common import check_release_id
from .lb import Backends

DEFAULT_NGINX_VERSION = (1, 22, 1)  # Debian 12's; RHEL 9's streams are older or newer


@dataclass(frozen=True)
class RenderedFile:
    """One file a deploy writes: where, what, and with which ownership and mode."""

    path: PurePosixPath
    content: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"


def render_all(
    spec: ServiceSpec,
    layout: Layout,
    release_id: str,
    *,
    nginx_version: tuple[int, int, int] = DEFAULT_NGINX_VERSION,
    slot: str = SLOTS[0],
) -> list[RenderedFile]:
    """Every config file of one deploy of `release_id` into `slot`, sorted by path: that slot's
    units, the site routing to the serving link. All are root-owned and world-readable: the service
    user only reads its gunicorn.conf.py, and nothing here is secret."""
    check_release_id(release_id)
    into = layout.slot(slot)
    files = [
        RenderedFile(into.service_unit_path, systemd.service_unit(spec, layout, release_id, into)),
        RenderedFile(into.socket_unit_path, systemd.socket_unit(spec, layout, into)),
        RenderedFile(layout.gunicorn_conf(release_id), gunicorn.gunicorn_conf(spec, layout, release_id)),
        *nginx_files(spec, layout, nginx_version),
        *(RenderedFile(path, text) for path, text in processes.process_files(spec, layout)),
    ]
    if tls_watch.watched(spec):
        path_unit, reload_unit = layout.tls_watch_unit_paths
        files.append(RenderedFile(path_unit, tls_watch.watch_path_unit(spec, layout)))
        files.append(RenderedFile(reload_unit, tls_watch.reload_service_unit(spec, layout)))
    return sorted(files, key=lambda f: str(f.path))


def nginx_files(
    spec: ServiceSpec, layout: Layout, nginx_version: tuple[int, int, int], backends: Backends | None = None
) -> list[RenderedFile]:
    """The site (routing to the serving link), the shared snippets and the catch-alls; with
    `backends`, a fleet's LB (render/lb.py)."""
    files = [
        RenderedFile(layout.nginx_site, nginx.site(spec, layout, nginx_version, backends)),
        RenderedFile(layout.nginx_tls_include, nginx_shared.tls_include()),
        RenderedFile(layout.nginx_proxy_include, nginx_shared.proxy_include()),
        RenderedFile(layout.nginx_headers_include, nginx_shared.security_headers_include()),
    ]
    for port, tls in ((spec.http.http_port, False), (spec.http.https_port, True)):
        text = nginx_shared.catch_all(port, tls, nginx_version, layout.nginx_tls_include)
        if text is not None:
            files.append(RenderedFile(layout.nginx_catch_all(port, tls), text))
    return sorted(files, key=lambda f: str(f.path))


__all__ = ["DEFAULT_NGINX_VERSION", "RenderedFile", "nginx_files", "render_all"]
