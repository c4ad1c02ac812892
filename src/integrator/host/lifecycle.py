"""Rollback on the host: the same health-gated activation as deploy (uninstall: uninstall.py)."""

from __future__ import annotations

from ..errors import EXIT_FAILED
from ..layout import Layout
from ..render.common import check_release_id
from ..result import Result
from ..spec import check_service_name
from . import bundleio, processes, releases, venvs
from .activate import HostContext, activate, previous_release
from .apply import activation_for, build_venv
from .facts import current_release, probe_host, venv_usable
from .fs import FileWriter
from .interrupt import interruptible
from .releases import OK, ROLLED_BACK, DeployLock
from .repair import repair_interrupted
from .selinux import apply_labels
from .status import require_installed
from .system import System, require_root

# --- rollback ------------------------------------------------------------------------------------


def rollback_local(system: System, name: str, to: str | None) -> Result:
    """Back to the previous good release, or `--to ID` (even the current one: units and site are
    written again, which is how a host is repaired by hand). A deploy or rollback that died
    part-way is repaired first; without `--to`, that repair is the rollback."""
    check_service_name(name)  # bad input first: exit 2 before root, lock or any read
    if to is not None:
        check_release_id(to)
    require_root(system, "rollback")
    layout = require_installed(system, name)
    with interruptible(), DeployLock(system, layout) as lock:
        repair = repair_interrupted(system, layout, lock)
        records = releases.load_records(system, layout)
        current = current_release(system, layout.current)
        if to is None and repair.serving:
            data = {"service": name, "release": current, "changed": True, "repaired": repair.lines}
            undone = repair.found.what if repair.found else "interrupted deploy"
            return Result(lines=repair.lines, data=data).say(
                f"rolled back: release {current} serves again (the {undone} is undone)"
            )
        on_disk = releases.release_ids(system, layout)
        target = releases.rollback_target(name, records, current, to, on_disk)
        result = _rollback_to(system, layout, lock, current, target)
    result.lines[:0] = repair.lines
    return result


def _rollback_to(
    system: System, layout: Layout, lock: DeployLock, current: str | None, target: str
) -> Result:
    facts = probe_host(system)
    ctx = HostContext(system, facts, bundleio.release_spec(system, layout, target), layout, lock)
    ctx.progress("venv")
    notes = _rebuild_venv_if_stale(ctx, target)
    previous = previous_release(system, layout, current)
    outcome = activate(ctx, FileWriter(system), activation_for(ctx, target), previous)
    data = {
        "service": layout.name,
        "release": target,
        "previous": current,
        "outcome": OK if outcome.ok else "failed",
    }
    if not outcome.ok:
        code = 128 + outcome.signum if outcome.interrupted else EXIT_FAILED
        result = Result(
            lines=notes, exit_code=code, data={**data, "reason": outcome.reason, "journal": outcome.journal}
        )
        result.say(f"rollback of {layout.name} to {target} failed: {outcome.reason}")
        result.say(f"release {current} {'still serving' if outcome.restored else 'NOT serving'}")
        result.lines.extend(f"  | {line}" for line in outcome.journal)
        return result
    ctx.progress("record")
    records = releases.load_records(system, layout)
    if current and current != target:
        records = releases.set_outcome(records, current, ROLLED_BACK, f"rolled back to {target}")
    records = releases.set_outcome(records, target, OK)
    releases.save_records(FileWriter(system), layout, records)
    result = Result(lines=notes, data={**data, "changed": True})
    if current == target:
        result.say(f"{layout.name}: release {target} written again and restarted; health check passed")
    else:
        result.say(f"rolled back {layout.name} from {current} to {target}; health check passed")
    return processes.switch_to(ctx, target, result)  # workers and timers follow the switch


def _rebuild_venv_if_stale(ctx: HostContext, rid: str) -> list[str]:
    """A release's venv breaks when the host's Python changed: rebuild it from the kept bundle."""
    why = venv_usable(ctx.system, ctx.layout.venv(rid), ctx.facts) or venvs.predates_sharing(
        ctx.system, ctx.layout, rid
    )
    if why is None:
        return []
    info = bundleio.reopen_release_bundle(ctx.system, ctx.layout, rid)
    venv = build_venv(ctx, info, rid)
    venvs.remove_unused(ctx.system, ctx.layout)
    apply_labels(ctx.system, ctx.spec, ctx.layout)  # the new venv/bin needs bin_t on RHEL
    return [f"rebuilt the venv of {rid}: {why} ({venv.line()})"]
