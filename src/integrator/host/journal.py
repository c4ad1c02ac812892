"""`logs NAME`: the app's lines and nginx's lines for its site, from the journal, in one time
order. journald is the one place to look; nothing here changes the host.

Pure argv builders (tested as data) and the command that runs them. nginx's lines are picked by
two fields journald sets itself or takes from the message: the sender's unit (nginx.service,
from its cgroup: a local user cannot forge it) and the syslog tag render/nginx_logs.py gives
the site (`Layout.journal_tag`).
"""

from __future__ import annotations

import os

from ..errors import EXIT_FAILED, HostError, UsageError
from ..layout import Layout
from ..result import Result
from .stream import stream
from .system import SYSTEM_PATH, System

SOURCES = ("all", "app", "nginx")
SOURCE_HELP = "app: the service's lines; nginx: its site's access (JSON) and error lines; all (default): both"
NGINX_UNIT = "nginx.service"


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise UsageError(f"unknown log source {source!r}: use one of {', '.join(SOURCES)}")
    return source


def journal_matches(layout: Layout, source: str) -> list[str]:
    """journalctl match groups ("+" between groups = or; fields within one = and).

    app: what the service and its socket wrote, and systemd's own lines about them (what
    `journalctl -u` shows, minus core dumps); nginx: nginx.service's lines tagged for the site."""
    units = (layout.service_unit, layout.socket_unit)
    app = [*(f"_SYSTEMD_UNIT={u}" for u in units), "+", "_PID=1", *(f"UNIT={u}" for u in units)]
    nginx = [f"_SYSTEMD_UNIT={NGINX_UNIT}", f"SYSLOG_IDENTIFIER={layout.journal_tag}"]
    return {"app": app, "nginx": nginx, "all": [*app, "+", *nginx]}[check_source(source)]


def journal_argv(layout: Layout, source: str, follow: bool, since: str | None, lines: int) -> list[str]:
    argv = ["journalctl", "-n", str(lines), "--no-pager"]
    if since:
        argv += ["--since", since]
    return argv + (["-f"] if follow else []) + journal_matches(layout, source)


def logs_local(system: System, name: str, source: str, follow: bool, since: str | None, lines: int) -> Result:
    """journalctl for the service; with --follow it streams to our stdout until interrupted."""
    from .status import layout_for  # status reads releases and bundles: only when it runs

    argv = journal_argv(layout_for(system, name), source, follow, since, lines)
    if follow:
        rc = stream(argv, env={**os.environ, "PATH": SYSTEM_PATH})
        return Result(exit_code=0 if rc == 0 else EXIT_FAILED)
    proc = system.run(argv, check=False)
    if not proc.ok:
        raise HostError(f"journalctl failed: {proc.output()}")
    out = proc.stdout.splitlines()
    return Result(lines=out, data={"service": name, "source": source, "journal": out})
