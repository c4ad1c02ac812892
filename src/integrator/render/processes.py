"""The units of [processes.NAME] and [timers.NAME]: NAME-proc-X.service (a worker beside
gunicorn), NAME-timer-X.timer and the NAME-timer-X.service it starts.

Each runs a command of the release as the web unit runs gunicorn: the same user, environment,
credentials and confinement, read from render/systemd.py (`confinement`, `environment_lines`),
so the units cannot drift apart. Unlike NAME.service they run the `current` release (its venv
and app directory): their files do not change from one release to the next, and restarting
them after the switch (host/processes.py) is what moves them to the new one.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..layout import Layout
from ..spec import ServiceSpec
from .common import header, stop_timeout
from .systemd import confinement, environment_lines, venv_environment
from .unit_text import exec_args, text

PROC, TIMER = "proc", "timer"
# confinement() takes a release id; its blocks name none (only the environment names a venv).
_ANY_RELEASE = "current"


def unit_name(layout: Layout, kind: str, name: str, suffix: str = "service") -> str:
    """NAME-proc-X.service, NAME-timer-X.service / .timer: `-` is in no service or process name,
    so these never collide with another service's units nor with each other."""
    return f"{layout.name}-{kind}-{name}.{suffix}"


def unit_names(spec: ServiceSpec, layout: Layout) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The workers' services, and the timers' .timer units: what a switch (re)starts."""
    workers = tuple(unit_name(layout, PROC, name) for name, _ in spec.processes.named)
    timers = tuple(unit_name(layout, TIMER, name, "timer") for name, _ in spec.timers.named)
    return workers, timers


def process_unit_paths(spec: ServiceSpec, layout: Layout) -> tuple[PurePosixPath, ...]:
    """Every unit file of the spec's processes and timers."""
    names = [unit_name(layout, PROC, n) for n, _ in spec.processes.named]
    for n, _ in spec.timers.named:
        names += [unit_name(layout, TIMER, n), unit_name(layout, TIMER, n, "timer")]
    return tuple(layout.unit_dir / name for name in names)


def process_files(spec: ServiceSpec, layout: Layout) -> list[tuple[PurePosixPath, str]]:
    """(path, text) of every unit of the spec's processes and timers."""
    files = []
    for name, proc in spec.processes.named:
        unit = unit_name(layout, PROC, name)
        files.append((layout.unit_dir / unit, worker_unit(spec, layout, name, proc.command)))
    for name, timer in spec.timers.named:
        service, timer_unit = unit_name(layout, TIMER, name), unit_name(layout, TIMER, name, "timer")
        text_ = timer_service_unit(spec, layout, name, timer.command, timer.timeout)
        files.append((layout.unit_dir / service, text_))
        files.append((layout.unit_dir / timer_unit, calendar_unit(spec, layout, name, timer.on_calendar)))
    return files


def worker_unit(spec: ServiceSpec, layout: Layout, name: str, command: tuple[str, ...]) -> str:
    """A long-running process: restarted when it fails, stopped like gunicorn."""
    unit, stop = unit_name(layout, PROC, name), stop_timeout(spec)
    lines = _confined_service(
        spec,
        layout,
        unit,
        [
            f"Description={text(spec.name)}: process {name} ([processes.{name}] in service.toml)",
            f"# Started, restarted and stopped with {layout.name}-a/-b.service by integrator, after each",
            f"# switch of {layout.current} (deploy, rollback): that restart is what runs the new release.",
        ],
        [
            "# Running once started (exec succeeded); a crash restarts it, 2 s apart.",
            "Type=exec",
            *_exec(spec, layout, command),
            "Restart=on-failure",
            "RestartSec=2",
            f"# Stop: SIGTERM, then SIGKILL after {stop} s (graceful_timeout + 5, like gunicorn).",
            f"TimeoutStopSec={stop}",
        ],
    )
    lines += ["[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


def timer_service_unit(
    spec: ServiceSpec, layout: Layout, name: str, command: tuple[str, ...], timeout: int
) -> str:
    """One run of a timer's command; started by its .timer only (no [Install])."""
    lines = _confined_service(
        spec,
        layout,
        unit_name(layout, TIMER, name),
        [
            f"Description={text(spec.name)}: timer {name} ([timers.{name}] in service.toml)",
            f"# Started by {unit_name(layout, TIMER, name, 'timer')}; runs the release of {layout.current}.",
        ],
        [
            "# One run to its end; a run longer than [timers] timeout is stopped (and counts as failed).",
            "Type=oneshot",
            *_exec(spec, layout, command),
            f"TimeoutStartSec={timeout}",
        ],
    )
    return "\n".join(lines).rstrip("\n") + "\n"


def _confined_service(
    spec: ServiceSpec, layout: Layout, unit: str, describe: list[str], service: list[str]
) -> list[str]:
    """What a worker and a timer's run share: the header, [Unit] (`describe`, then After=),
    [Service] (`service`), then the web unit's environment and confinement."""
    lines = header(layout.unit_dir / unit, f"Review the hardening: systemd-analyze security {unit}")
    return [
        *lines,
        "",
        "[Unit]",
        *describe,
        "After=network.target",
        "",
        "[Service]",
        *service,
        "",
        *_confined(spec, layout),
    ]


def calendar_unit(spec: ServiceSpec, layout: Layout, name: str, on_calendar: str) -> str:
    """The .timer: when to start the run. A run still going when the next is due is not doubled."""
    unit = unit_name(layout, TIMER, name, "timer")
    lines = header(layout.unit_dir / unit)
    lines += [
        "",
        "[Unit]",
        f"Description={text(spec.name)}: timer {name}, on calendar {text(on_calendar)}",
        "",
        "[Timer]",
        "# [timers] on_calendar (systemd.time(7)); `systemctl list-timers` shows the next run.",
        f"OnCalendar={on_calendar}",
        "# Within a second of it (systemd's default allows a minute, to batch wake-ups).",
        "AccuracySec=1s",
        f"Unit={unit_name(layout, TIMER, name)}",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return "\n".join(lines) + "\n"


def _exec(spec: ServiceSpec, layout: Layout, command: tuple[str, ...]) -> list[str]:
    """A plain program name is the venv's (`python`, `flask`, `celery`); a path is used as is."""
    venv = layout.current / "venv"
    program = command[0] if command[0].startswith("/") else str(venv / "bin" / command[0])
    return [
        f"# The serving release: {layout.current} is switched by a deploy or rollback, then this restarts.",
        f"ExecStart={exec_args([program, *command[1:]])}",
        f"WorkingDirectory={layout.current}/app",
    ]


def _confined(spec: ServiceSpec, layout: Layout) -> list[str]:
    """The web unit's environment (with the `current` venv) and its confinement, block by block."""
    lines: list[str] = []
    base = venv_environment(spec, layout.current / "venv", layout.app_state_dir)
    for block in (environment_lines(spec, layout, base), *confinement(spec, layout, _ANY_RELEASE)):
        if block:
            lines += [*block, ""]
    return lines
