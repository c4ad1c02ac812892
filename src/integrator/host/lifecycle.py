"""Rollback and uninstall on the host. Rollback goes through the same health-gated activation
as deploy; uninstall removes one service and leaves nginx valid and every other service alone.
"""

from __future__ import annotations

import contextlib
from pathlib import PurePosixPath

from ..errors import EXIT_FAILED, HostError
from ..layout import STATE_ROOT, Layout
from ..render.common import check_release_id
from ..result import Result
from ..spec import check_service_name
from . import bundleio, ownership, releases, units, venvs
from .activate import HostContext, activate, previous_release
from .apply import activation_for, build_venv
from .facts import current_release, probe_host, venv_usable
from .fs import FileWriter, remove_tree
from .interrupt import interruptible
from .nginxconf import unused_catch_alls
from .releases import OK, ROLLED_BACK, DeployLock
from .repair import repair_interrupted
from .selinux import apply_labels, remove_labels
from .status import layout_for, require_installed
from .system import System, require_root
from .users import remove_user

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
        return result.say(f"{layout.name}: release {target} written again and restarted; health check passed")
    return result.say(f"rolled back {layout.name} from {current} to {target}; health check passed")


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


# --- uninstall -----------------------------------------------------------------------------------


def uninstall_local(system: System, name: str, purge: bool) -> Result:
    """Remove what integrator created for `name` (the ownership record says what); anything else
    with the service's names (a system account, an admin's directory) is kept and reported."""
    check_service_name(name)  # `../srv/www` or `default` would name someone else's files
    require_root(system, "uninstall")
    layout = layout_for(system, name)
    if ownership.load(system, layout) is None:
        raise HostError(f"{name} is not installed on this host")
    with DeployLock(system, layout):
        owned = ownership.load(system, layout) or ownership.Owned(name)  # again, under the lock
        owned = ownership.claimed(layout, owned, ownership.probe(system, layout))
        removed = _remove_service(system, layout, owned)
        removed += _remove_site(system, layout, owned)
        problem = units.reload_nginx_if_valid(system)
        if not purge:
            ownership.save_still_ours(system, layout, owned)
    if purge:
        removed += _purge(system, layout, owned)
    kept = [thing for thing, _ in ownership.conflicts(layout, owned, ownership.probe(system, layout))]
    result = Result(data={"service": name, "removed": removed, "kept": kept, "purge": purge})
    result.say(f"uninstalled {name}" + (" (purged data, secrets, certificates)" if purge else ""))
    result.lines.extend(f"  removed {p}" for p in removed)
    result.lines.extend(f"  kept {thing}: not created by integrator" for thing in kept)
    if problem:
        result.exit_code = EXIT_FAILED
        result.say(f"nginx -t fails after removing {name}'s site (not caused by it?): {problem}")
    return result


def _remove_service(system: System, layout: Layout, owned: ownership.Owned) -> list[str]:
    live = ownership.probe(system, layout)
    unit_paths = (layout.service_unit_path, layout.socket_unit_path, *layout.tls_watch_unit_paths)
    ours = [p for p in unit_paths if ownership.owns(owned, layout, live, p)]
    if ours and not live.foreign_units:  # never stop a unit of the same name that is not ours
        units.stop_and_disable(system, layout)
    writer = FileWriter(system)
    removed = [str(p) for p in ours if writer.remove(p).changed]
    if ours:
        units.daemon_reload(system)
        failed = [layout.service_unit, layout.socket_unit, layout.tls_watch_unit, layout.tls_reload_unit]
        system.run(["systemctl", "reset-failed", *failed], check=False)
    removed += _remove_owned(system, layout, owned, (layout.root, layout.runtime_dir))
    return removed + remove_user(system, layout, owned)


def _remove_owned(
    system: System, layout: Layout, owned: ownership.Owned, paths: tuple[PurePosixPath, ...]
) -> list[str]:
    """Each path that integrator created and that is still that object."""
    live = ownership.probe(system, layout)
    return [str(p) for p in paths if ownership.owns(owned, layout, live, p) and remove_tree(system, p)]


def _remove_site(system: System, layout: Layout, owned: ownership.Owned) -> list[str]:
    """The site (when it is ours), the catch-alls of ports no other site uses, and the shared
    includes once no other site uses them."""
    live = ownership.probe(system, layout)
    writer = FileWriter(system)
    removed = []
    if ownership.owns(owned, layout, live, layout.nginx_site) and writer.remove(layout.nginx_site).changed:
        removed.append(str(layout.nginx_site))
    removed += [str(p) for p in unused_catch_alls(system, layout) if writer.remove(p).changed]
    if not _other_sites_use_includes(system, layout) and remove_tree(system, layout.nginx_include_dir):
        removed.append(str(layout.nginx_include_dir))
    return removed


def _other_sites_use_includes(system: System, layout: Layout) -> bool:
    conf_d = system.path(layout.nginx_site.parent)
    marker = str(layout.nginx_include_dir)
    return any(marker in p.read_text(errors="replace") for p in conf_d.glob("*.conf") if p.is_file())


def _purge(system: System, layout: Layout, owned: ownership.Owned) -> list[str]:
    """Data, secrets, certificates (only directories integrator created), the release records
    and the record itself (integrator's own /var/lib/integrator/NAME), the SELinux rules."""
    removed = _remove_owned(system, layout, owned, tuple(ownership.managed_dirs(layout)))
    if remove_tree(system, layout.state_dir):
        removed.append(str(layout.state_dir))
    for parent in (STATE_ROOT, layout.etc_dir.parent):  # integrator's own; gone with the last service
        with contextlib.suppress(OSError):  # not empty: other services still use it
            system.path(parent).rmdir()
            removed.append(str(parent))
    return removed + remove_labels(system, layout)
