"""`run NAME -- CMD...`: a one-off command (a console, a management command) in a transient
unit built like the service's own (render/transient.py), from the release that is serving.

Host-side. The command stays an argv from the operator's command line to systemd (never a
shell); systemd-run waits for it and exits with its exit code, which is ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import PurePosixPath

from ..errors import EnvironmentProblem, UsageError
from ..layout import Layout
from ..render.transient import check_command, transient_argv, unit_name
from .run_journal import Journal, run_teed
from .system import SYSTEM_PATH, System

# Where a bare program name is looked up: the places NAME.service may execute from, venv first.
SEARCH = ("/usr/bin", "/bin")


def resolve_program(system: System, layout: Layout, release_id: str, program: str) -> str:
    """A bare name (`python`, `flask`) as the release's venv or the system has it; a path as given."""
    if "/" in program:
        if not program.startswith("/"):
            raise UsageError(f"{program!r}: give a program name or an absolute path")
        return program
    for directory in (str(layout.venv(release_id) / "bin"), *SEARCH):
        path = PurePosixPath(directory) / program
        if os.access(system.path(path), os.X_OK):
            return str(path)
    raise UsageError(
        f"{program!r}: not found in {layout.venv(release_id)}/bin, /usr/bin or /bin; give an absolute path"
    )


def serving(system: System, name: str) -> tuple[Layout, str]:
    """The service's layout and the release serving it; a service not deployed here is refused."""
    from .facts import current_release
    from .status import layout_for

    layout = layout_for(system, name)
    release_id = current_release(system, layout.current)
    if release_id is None or not system.path(layout.release(release_id)).is_dir():
        raise UsageError(f"{name}: no deployed service of that name on this host (see `integrator list`)")
    return layout, release_id


def run_local(system: System, name: str, command: Sequence[str], tty: bool | None = None) -> int:
    """Run `command` as the service would; its exit code. With a terminal on stdin, a pty."""
    from .bundleio import release_spec
    from .config_facts import load_config

    check_command(["/", *command[1:]] if command else [])
    layout, release_id = serving(system, name)
    spec = release_spec(system, layout, release_id)
    program = resolve_program(system, layout, release_id, command[0])
    use_tty = sys.stdin.isatty() and sys.stdout.isatty() if tty is None else tty
    unit = unit_name(layout, "run", str(os.getpid()))
    stdio = "pty" if use_tty else "pipe"
    host = load_config(system, layout)  # this host's `config set` and `secret set`, as the service has them
    argv = transient_argv(
        spec, layout, release_id, [program, *command[1:]], unit=unit, stdio=stdio, host=host
    )
    sys.stdout.flush()
    journal = Journal(f"{name}-run", unit)
    journal.send(f"run {program} ({len(command) - 1} arguments) in release {release_id}".encode())
    env = {**os.environ, "PATH": SYSTEM_PATH}
    try:  # without a terminal its output is copied to the journal too; with one, only its start and end
        rc = subprocess.call(argv, env=env) if use_tty else run_teed(argv, env, journal)
    except FileNotFoundError:
        raise EnvironmentProblem("systemd-run: not found on this host (systemd >= 240 is needed)") from None
    journal.send(f"exited with {rc}".encode())
    journal.close()
    return rc
