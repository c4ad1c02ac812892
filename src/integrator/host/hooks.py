"""The release hook (`[deploy] release`): one command per deploy, after the new release's venv
exists and before the switch, in the service's transient unit (render/transient.py) with the
NEW release's venv. Its output goes to the journal (unit NAME-release-ID.service); a non-zero
exit or a run past `release_timeout` fails the deploy with its last lines in the message.

Host-side. Not run on a deploy with nothing to do (no plan to apply), nor by a rollback: a
rollback returns to code whose schema the newer migration already expanded (docs/deploy.md).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence

from ..errors import HostError
from ..layout import Layout
from ..render.transient import transient_argv, unit_name
from ..spec import ServiceSpec
from .config_facts import load_config
from .run import resolve_program
from .system import System

LAST_LINES = 20
_GRACE_S = 60  # beyond RuntimeMaxSec=: systemd stops the unit itself, this only bounds our wait


def hook_unit(layout: Layout, release_id: str) -> str:
    """NAME-release-ID.service: one per release, so its journal lines are the ones of this run."""
    return unit_name(layout, "release", re.sub(r"[^a-z0-9]", "", release_id.lower())[:32])


def run_release_hook(
    system: System, spec: ServiceSpec, layout: Layout, release_id: str, command: Sequence[str]
) -> None:
    """Run the release command (the plan's, from [deploy] release) for `release_id`; a HostError
    with its last lines if it fails."""
    timeout = spec.deploy.release_timeout
    program = resolve_program(system, layout, release_id, command[0])
    unit = hook_unit(layout, release_id)
    host = load_config(system, layout)  # the host's overrides, as the release will run with them
    argv = transient_argv(
        spec,
        layout,
        release_id,
        [program, *command[1:]],
        unit=unit,
        stdio="journal",
        timeout_s=timeout,
        host=host,
    )
    started = time.monotonic()
    try:
        proc = system.run(argv, check=False, timeout=timeout + _GRACE_S)
    except HostError:
        system.run(["systemctl", "stop", unit], check=False)
        raise
    took = time.monotonic() - started
    if proc.ok:
        return
    shown = shlex.join(command)
    why = f"ran longer than {timeout} s" if took >= timeout else f"exited with {proc.returncode}"
    lines = last_lines(system, unit) or [proc.output() or "(no output)"]
    raise HostError(
        f"release command `{shown}` {why}; its last lines "
        f"(journalctl -u {unit}):\n" + "\n".join(f"  | {line}" for line in lines)
    )


def last_lines(system: System, unit: str) -> list[str]:
    """What the hook's process wrote, its last lines, from the journal (flushed first)."""
    system.run(["journalctl", "--sync"], check=False)
    argv = ["journalctl", f"_SYSTEMD_UNIT={unit}", "-o", "cat", "-n", str(LAST_LINES), "--no-pager"]
    proc = system.run(argv, check=False)
    return [line for line in proc.stdout.splitlines() if line.strip()] if proc.ok else []
