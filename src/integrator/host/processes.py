"""Workers and timers on the host ([processes.NAME], [timers.NAME]; units: render/processes.py).

Their units run the release `current` points at, so they move to a new release by a restart
after the switch, never before: a deploy or rollback that fails before its switch leaves them
running the release that still serves. What a switch does to them is pure (`plan_processes`:
the units to restart, the units of processes the release no longer has to stop and remove),
done by `switch_processes` after the switch, for deploy and rollback alike. A worker that does
not stay running for SETTLE_S seconds makes the command fail (exit 1) with its journal lines,
while the web release stays switched: the web is health-gated, a worker is not, and rolling the
site back for a worker would make a worker's bug an outage (docs/processes.md).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ..errors import EXIT_FAILED, SpecError
from ..layout import Layout
from ..render.processes import PROC, TIMER, process_unit_paths, unit_name, unit_names
from ..result import Result
from ..spec import ServiceSpec
from .facts import parse_properties
from .fs import FileWriter
from .system import System

if TYPE_CHECKING:
    from .activate import HostContext
    from .release_facts import FileFacts

SETTLE_S = 3.0  # a worker must stay running this long after its restart (RestartSec=2 shows a crash)
JOURNAL_LINES = 10
_MARKER = b"\n# Rendered by integrator"  # render/common.py header: a unit file of ours


@dataclass(frozen=True)
class ProcessPlan:
    """What a switch does to the workers and timers, decided before anything changes."""

    restart: tuple[str, ...] = ()  # workers' services, then timers' .timer units: enabled, restarted
    workers: tuple[str, ...] = ()  # of those, the long-running ones that must stay running
    stop: tuple[str, ...] = ()  # units of processes and timers the release does not have
    remove: tuple[tuple[PurePosixPath, str], ...] = ()  # their files (path, sha256), once stopped

    @property
    def empty(self) -> bool:
        return not (self.restart or self.stop)


@dataclass
class Started:
    """How the restart went: the workers that did not stay running, each with its journal lines."""

    failed: dict[str, list[str]] = field(default_factory=dict)


def _unit_re(layout: Layout) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(layout.name)}-({PROC}-[a-z][a-z0-9_]{{0,31}}\.service|"
                      rf"{TIMER}-[a-z][a-z0-9_]{{0,31}}\.(service|timer))")  # fmt: skip


def found_unit_paths(system: System, layout: Layout) -> list[PurePosixPath]:
    """The unit files of this service's processes and timers on the host, whatever release
    wrote them (the facts a plan compares against: the stale ones are stopped and removed)."""
    real = system.path(layout.unit_dir)
    if not real.is_dir():
        return []
    pattern = _unit_re(layout)
    names = sorted(p.name for p in real.glob(f"{layout.name}-*") if pattern.fullmatch(p.name))
    return [layout.unit_dir / name for name in names]


def plan_processes(spec: ServiceSpec, layout: Layout, found: FileFacts) -> ProcessPlan:
    """Pure: restart every worker and timer of `spec`; stop and remove the units found (of
    ours: rendered by integrator) that `spec` no longer has, each timer before its service."""
    workers, timers = unit_names(spec, layout)
    wanted, pattern = set(process_unit_paths(spec, layout)), _unit_re(layout)
    stale = [
        (path, state)
        for path, state in found.files.items()
        if pattern.fullmatch(path.name) and path not in wanted and _MARKER in (state.content or b"")
    ]
    stale.sort(key=lambda item: (not item[0].name.endswith(".timer"), item[0].name))
    return ProcessPlan(
        restart=(*workers, *timers),
        workers=workers,
        stop=tuple(path.name for path, _ in stale),
        remove=tuple((path, state.sha256) for path, state in stale),
    )


def process_plan_lines(plan: ProcessPlan) -> list[str]:
    """`deploy --plan`: what the switch does to the workers and timers."""
    lines = [f"  then stop  {', '.join(plan.stop)} (not in this release)"] if plan.stop else []
    return lines + ([f"  then restart {', '.join(plan.restart)} on the new release"] if plan.restart else [])


def check_calendars(system: System, spec: ServiceSpec) -> None:
    """Each timer's on_calendar as this host's systemd reads it (the build side's pattern is a
    subset of its syntax; a time zone, for one, must exist here). Before anything changes."""
    for name, timer in spec.timers.named:
        proc = system.run(["systemd-analyze", "calendar", "--", timer.on_calendar], check=False)
        if not proc.ok:
            why = proc.output().strip().splitlines()[-1:] or ["refused"]
            raise SpecError(f"[timers.{name}] on_calendar {timer.on_calendar!r}: this host's systemd "
                            f"refuses it ({why[0]}); fix service.toml and build again")  # fmt: skip


def switch_to(ctx: HostContext, release_id: str, result: Result) -> Result:
    """`switch_processes` after a rollback to `release_id`: its plan from the files found now."""
    from .release_facts import probe_files

    return switch_processes(ctx, plan_processes(ctx.spec, ctx.layout, probe_files(ctx, release_id)), result)


def switch_processes(ctx: HostContext, plan: ProcessPlan, result: Result) -> Result:
    """After a switch: stop what the release no longer has, restart the rest on it, and add
    the outcome to `result` (exit 1 when a worker did not stay running)."""
    if plan.empty:
        return result
    ctx.progress("processes")
    started = apply_processes(ctx.system, plan)
    result.data["processes"] = {
        "restarted": list(plan.restart),
        "stopped": list(plan.stop),
        "failed": sorted(started.failed),
    }
    if plan.stop:
        result.say(f"  stopped and removed {', '.join(plan.stop)} (not in this release)")
    ok = [unit for unit in plan.restart if unit not in started.failed]
    if ok:
        result.say(f"  restarted {', '.join(ok)} on {ctx.layout.current}")
    for unit, lines in started.failed.items():
        result.say(f"worker {unit} did not stay running; the web release serves (docs/processes.md):")
        result.lines.extend(f"  | {line}" for line in lines)
    if started.failed and result.exit_code == 0:
        result.exit_code = EXIT_FAILED
    return result


def apply_processes(system: System, plan: ProcessPlan) -> Started:
    """Do `plan`: stale units disabled and stopped before their files go; then the release's
    units enabled (a reboot starts them) and restarted, and the workers watched for SETTLE_S."""
    if plan.stop:
        system.run(["systemctl", "disable", "--now", "--quiet", *plan.stop], check=False)
        writer = FileWriter(system)
        for path, _ in plan.remove:
            writer.remove(path)
        system.run(["systemctl", "daemon-reload"])
        system.run(["systemctl", "reset-failed", *plan.stop], check=False)
    if not plan.restart:
        return Started()
    since = time.time()
    system.run(["systemctl", "enable", "--quiet", *plan.restart], check=False)
    system.run(["systemctl", "restart", *plan.restart], check=False)  # each is checked below
    if plan.workers:
        time.sleep(SETTLE_S)
    failed = {}
    for unit in plan.workers:
        state = _show(system, unit, "ActiveState", "SubState", "NRestarts")
        if state.get("ActiveState") != "active" or state.get("NRestarts", "0") != "0":
            how = f"{state.get('ActiveState', '?')} ({state.get('SubState', '?')})"
            head = f"{how}, {state.get('NRestarts', '?')} restart(s) in {SETTLE_S:.0f} s"
            failed[unit] = [head, *_journal(system, unit, since)]
    return Started(failed)


def process_states(system: System, layout: Layout, spec: ServiceSpec) -> list[dict[str, object]]:
    """`status`: each worker's state and restarts; each timer's state, next and last run, and
    how its last run ended. `ok` is False for a worker not running or a timer not waiting."""
    states: list[dict[str, object]] = []
    for name, _ in spec.processes.named:
        unit = unit_name(layout, PROC, name)
        s = _show(system, unit, "ActiveState", "SubState", "MainPID", "NRestarts")
        ok = s.get("ActiveState") == "active"
        states.append({"name": name, "kind": "process", "unit": unit, "ok": ok, "state": _state(s),
                       "pid": s.get("MainPID"), "restarts": s.get("NRestarts")})  # fmt: skip
    for name, _ in spec.timers.named:
        unit, timer = unit_name(layout, TIMER, name), unit_name(layout, TIMER, name, "timer")
        t = _show(system, timer, "ActiveState", "SubState", "NextElapseUSecRealtime", "LastTriggerUSec")
        run = _show(system, unit, "ActiveState", "SubState", "Result")
        ok = t.get("ActiveState") == "active"
        last = t.get("LastTriggerUSec") or None
        states.append({"name": name, "kind": "timer", "unit": timer, "ok": ok, "state": _state(t),
                       "next": t.get("NextElapseUSecRealtime") or None, "last": last,
                       "last_result": run.get("Result")})  # fmt: skip
    return states


def process_lines(states: list[dict[str, object]]) -> list[str]:
    """The `status` lines of `process_states`."""
    lines = []
    for s in states:
        if s["kind"] == "process":
            lines.append(f"  process {s['name']}: {s['state']}, pid {s['pid']}, restarts {s['restarts']}")
        else:
            lines.append(f"  timer {s['name']}: {s['state']}, next {s['next'] or '-'}, "
                         f"last {s['last'] or 'never'} ({s['last_result']})")  # fmt: skip
    return lines


def remove_units(system: System, layout: Layout) -> list[str]:
    """Uninstall: every process and timer unit of ours, stopped and disabled before its file goes."""
    ours = [p for p in found_unit_paths(system, layout) if _MARKER in system.path(p).read_bytes()]
    if not ours:
        return []
    names = sorted((p.name for p in ours), key=lambda n: (not n.endswith(".timer"), n))
    system.run(["systemctl", "disable", "--now", "--quiet", *names], check=False)
    writer = FileWriter(system)
    removed = [str(p) for p in ours if writer.remove(p).changed]
    system.run(["systemctl", "daemon-reload"])
    system.run(["systemctl", "reset-failed", *names], check=False)
    return removed


def _show(system: System, unit: str, *props: str) -> dict[str, str]:
    proc = system.run(["systemctl", "show", "-p", ",".join(props), unit], check=False)
    return parse_properties(proc.stdout)


def _state(props: dict[str, str]) -> str:
    return f"{props.get('ActiveState', '?')} ({props.get('SubState', '?')})"


def _journal(system: System, unit: str, since: float) -> list[str]:
    """What the unit and systemd about it logged since `since` (a missing program, a traceback)."""
    system.run(["journalctl", "--sync"], check=False)
    argv = ["journalctl", "-u", unit, "--since", f"@{int(since) - 1}", "-o", "cat"]
    proc = system.run([*argv, "-n", str(JOURNAL_LINES), "--no-pager"], check=False)
    return [line for line in proc.stdout.splitlines() if line.strip()] or [f"(see journalctl -u {unit})"]
