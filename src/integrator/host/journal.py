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
from ..render.processes import PROC, TIMER, unit_name
from ..result import Result
from ..spec.text import PROCESS_NAME_RE
from .stream import stream
from .system import SYSTEM_PATH, System

SOURCES = ("all", "app", "nginx")
SOURCE_HELP = "app: the service's lines; nginx: its site's access (JSON) and error lines; all (default): both"
PROCESS_HELP = "only the lines of [processes.X] or [timers.X] (and systemd's about it)"
NGINX_UNIT = "nginx.service"


def check_source(source: str) -> str:
    if source not in SOURCES:
        raise UsageError(f"unknown log source {source!r}: use one of {', '.join(SOURCES)}")
    return source


def check_process(source: str, process: str | None) -> str | None:
    """--process X: a process or timer name (they never share one), only with the app's lines."""
    if process is None:
        return None
    if not PROCESS_NAME_RE.fullmatch(process):
        raise UsageError(f"--process {process!r}: not a process or timer name (lowercase letters, digits, _)")
    if check_source(source) == "nginx":
        raise UsageError("--process shows a process's lines: leave out --source nginx")
    return process


def journal_matches(layout: Layout, source: str, process: str | None = None) -> list[str]:
    """journalctl match groups ("+" between groups = or; fields within one = and).

    app: what the service and its socket wrote, and systemd's own lines about them (what
    `journalctl -u` shows, minus core dumps); nginx: nginx.service's lines tagged for the site.
    `process`: the same for the units of [processes.X] or [timers.X] instead (both names:
    a name is one or the other, and the matches need no spec)."""
    if check_process(source, process) is not None:
        assert process is not None
        ran = (unit_name(layout, PROC, process), unit_name(layout, TIMER, process))
        about = (*ran, unit_name(layout, TIMER, process, "timer"))
        return [*(f"_SYSTEMD_UNIT={u}" for u in ran), "+", "_PID=1", *(f"UNIT={u}" for u in about)]
    units = tuple(unit for slot in layout.all_slots for unit in slot.units)  # every slot's lines
    app = [*(f"_SYSTEMD_UNIT={u}" for u in units), "+", "_PID=1", *(f"UNIT={u}" for u in units)]
    nginx = [f"_SYSTEMD_UNIT={NGINX_UNIT}", f"SYSLOG_IDENTIFIER={layout.journal_tag}"]
    return {"app": app, "nginx": nginx, "all": [*app, "+", *nginx]}[check_source(source)]


def journal_argv(
    layout: Layout, source: str, follow: bool, since: str | None, lines: int, process: str | None = None
) -> list[str]:
    argv = ["journalctl", "-n", str(lines), "--no-pager"]
    if since:
        argv += ["--since", since]
    return argv + (["-f"] if follow else []) + journal_matches(layout, source, process)


def logs_local(
    system: System,
    name: str,
    source: str,
    follow: bool,
    since: str | None,
    lines: int,
    process: str | None = None,
) -> Result:
    """journalctl for the service; with --follow it streams to our stdout until interrupted.
    `--process X` must name a process or timer of the serving release (a typo shows nothing)."""
    from .status import layout_for  # status reads releases and bundles: only when it runs

    layout = layout_for(system, name)
    if check_process(source, process) is not None:
        _known_process(system, layout, str(process))
    argv = journal_argv(layout, source, follow, since, lines, process)
    if follow:
        rc = stream(argv, env={**os.environ, "PATH": SYSTEM_PATH})
        return Result(exit_code=0 if rc == 0 else EXIT_FAILED)
    proc = system.run(argv, check=False)
    if not proc.ok:
        raise HostError(f"journalctl failed: {proc.output()}")
    out = proc.stdout.splitlines()
    data = {"service": name, "source": source, "journal": out, **({"process": process} if process else {})}
    return Result(lines=out, data=data)


def _known_process(system: System, layout: Layout, process: str) -> None:
    from . import bundleio
    from .facts import current_release

    rid = current_release(system, layout.current)
    if rid is None:
        return
    spec = bundleio.release_spec(system, layout, rid)
    known = [n for n, _ in spec.processes.named] + [n for n, _ in spec.timers.named]
    if process not in known:
        have = ", ".join(known) or "none"
        raise UsageError(f"{layout.name} release {rid} has no process or timer {process!r} (it has: {have})")
