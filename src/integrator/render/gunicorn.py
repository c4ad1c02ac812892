"""gunicorn.conf.py, stored inside each release so a rollback brings its own settings back.

It must work with gunicorn 23 (what pip resolves for Python 3.9, RHEL 9's python3) and 27:
every setting below exists in both, except `control_socket_disable`, which gunicorn 23
ignores (it skips unknown names in a config file, and has no control socket to disable).
"""

from __future__ import annotations

import json

from ..layout import Layout
from ..spec import ServiceSpec
from .common import GUNICORN_KEEPALIVE_S, SLOT_IDLE_S, SOCKET_BACKLOG, header


def gunicorn_conf(spec: ServiceSpec, layout: Layout, release_id: str) -> str:
    """A readable config: settings grouped, each group saying why."""
    lines = [
        *header(
            layout.gunicorn_conf(release_id), "Settings: https://docs.gunicorn.org/en/stable/settings.html"
        ),
        *_socket(layout),
        *_workers(spec),
        *_logging(spec),
        *_proxy(),
        *_control_socket(),
    ]
    return "\n".join(lines) + "\n"


def _socket(layout: Layout) -> list[str]:
    return [
        "",
        f"# No `bind`: the slot's socket unit ({layout.name}-a.socket or {layout.name}-b.socket) owns",
        f"# {layout.runtime_dir}/gunicorn-<slot>.sock and hands it over as fd 3",
        "# (LISTEN_FDS); gunicorn serves inherited sockets instead of binding its own.",
        "# gunicorn 23 calls listen() on it again with this backlog: keep it equal to the unit's Backlog=.",
        f"backlog = {SOCKET_BACKLOG}",
    ]


def _workers(spec: ServiceSpec) -> list[str]:
    return [
        "",
        "# gthread keeps nginx's upstream connections alive (the sync worker answers Connection: close).",
        'worker_class = "gthread"',
        f"workers = {spec.server.workers}",
        f"threads = {spec.server.threads}",
        "# A worker silent this long is killed and replaced.",
        f"timeout = {spec.server.timeout}",
        "# On stop and reload, workers get this long to finish requests (TimeoutStopSec= is longer).",
        f"graceful_timeout = {spec.server.graceful_timeout}",
        f"# Idle connections from nginx stay open a bit longer than nginx keeps them ({SLOT_IDLE_S}s),",
        "# so nginx never reuses a connection gunicorn is closing.",
        f"keepalive = {GUNICORN_KEEPALIVE_S}",
        "# Worker heartbeat files in RAM, not on disk: a slow disk must not make healthy workers",
        "# look dead.",
        'worker_tmp_dir = "/dev/shm"',
    ]


def _logging(spec: ServiceSpec) -> list[str]:
    return [
        "",
        "# The app logs one JSON line per request itself; gunicorn's own messages go to stderr,",
        "# which systemd sends to the journal.",
        "accesslog = None",
        'errorlog = "-"',
        f"proc_name = {json.dumps(spec.name)}",
    ]


def _proxy() -> list[str]:
    return [
        "",
        "# Only nginx can connect (the socket is 0660, group of the nginx workers), so the",
        "# X-Forwarded-* headers it sets are trusted; gunicorn trusts unix-socket peers anyway,",
        "# '*' says so explicitly. Only X-Forwarded-Proto (set by nginx) decides http vs https:",
        "# a client-sent X-Forwarded-Ssl cannot contradict it and turn requests into errors.",
        'forwarded_allow_ips = "*"',
        'secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}',
    ]


def _control_socket() -> list[str]:
    return [
        "",
        "# gunicorn >= 25.1 opens a control socket under $HOME/.gunicorn, which fails on the",
        "# read-only file system. Disabled here rather than with --no-control-socket in the unit:",
        "# that flag makes gunicorn 23 refuse to start, this setting is ignored by it.",
        "control_socket_disable = True",
    ]
