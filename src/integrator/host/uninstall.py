"""`uninstall NAME` on this host: facts → plan (uninstall_plan.py, pure) → apply (HOST-SIDE).

Removes one service and leaves nginx valid and every other service alone; what is removed is
decided once, from one probe, by `plan_uninstall`.
"""

from __future__ import annotations

import contextlib

from ..errors import EXIT_FAILED, HostError
from ..layout import Layout
from ..result import Result
from ..spec import check_service_name
from . import ownership, processes, units
from .config import remove_host_config
from .fs import FileWriter, remove_tree
from .nginxconf import integrator_sites
from .releases import DeployLock
from .selinux import remove_labels
from .status import layout_for
from .system import System, require_root
from .uninstall_plan import UninstallFacts, UninstallPlan, plan_uninstall


def uninstall_local(system: System, name: str, purge: bool) -> Result:
    """Remove what integrator created for `name` (the ownership record says what); anything else
    with the service's names (a system account, an admin's directory) is kept and reported."""
    check_service_name(name)  # `../srv/www` or `default` would name someone else's files
    require_root(system, "uninstall")
    layout = layout_for(system, name)
    if ownership.load(system, layout) is None:
        raise HostError(f"{name} is not installed on this host")
    with DeployLock(system, layout):
        facts = probe_uninstall(system, layout)  # under the lock
        plan = plan_uninstall(layout, facts, purge)
        removed = remove_service(system, layout, plan)
        problem = units.reload_nginx_if_valid(system)
        if plan.keep_record:
            ownership.save_still_ours(system, layout, facts.owned)
    removed += remove_purged(system, layout, plan)
    kept = [thing for thing, _ in ownership.conflicts(layout, facts.owned, ownership.probe(system, layout))]
    result = Result(data={"service": name, "removed": removed, "kept": kept, "purge": purge})
    result.say(f"uninstalled {name}" + (" (purged data, secrets, certificates)" if purge else ""))
    result.lines.extend(f"  removed {p}" for p in removed)
    result.lines.extend(f"  kept {thing}: not created by integrator" for thing in kept)
    if problem:
        result.exit_code = EXIT_FAILED
        result.say(f"nginx -t fails after removing {name}'s site (not caused by it?): {problem}")
    return result


def probe_uninstall(system: System, layout: Layout) -> UninstallFacts:
    """The host read once: the record (with what the host shows claimed), the live accounts,
    paths and units, and conf.d's integrator sites, catch-alls and users of the includes."""
    live = ownership.probe(system, layout)
    owned = ownership.claimed(layout, ownership.load(system, layout) or ownership.Owned(layout.name), live)
    sites, catch_alls = integrator_sites(system, layout)
    conf_d, marker = system.path(layout.nginx_site.parent), str(layout.nginx_include_dir)
    users = frozenset(
        p.name for p in conf_d.glob("*.conf") if p.is_file() and marker in p.read_text(errors="replace")
    )
    return UninstallFacts(
        owned=owned,
        live=live,
        sites=sites,
        catch_alls=catch_alls,
        include_users=users,
        includes_exist=system.path(layout.nginx_include_dir).exists(),
        state_dir_exists=system.path(layout.state_dir).exists(),
    )


def remove_service(system: System, layout: Layout, plan: UninstallPlan) -> list[str]:
    """Under the lock: units, trees, account, site, catch-alls, includes; what was removed."""
    removed = processes.remove_units(system, layout)  # workers and timers first (ours only)
    if plan.stop:
        units.stop_and_disable(system, layout)
    writer = FileWriter(system)
    removed += [str(p) for p in plan.units if writer.remove(p).changed]
    if plan.units:
        removed += remove_host_config(system, layout)  # the drop-in of `config set`, with the units
        units.daemon_reload(system)
        slot_units = [unit for slot in layout.all_slots for unit in slot.units]
        failed = [*slot_units, layout.tls_watch_unit, layout.tls_reload_unit]
        system.run(["systemctl", "reset-failed", *failed], check=False)
    removed += [str(p) for p in plan.trees if remove_tree(system, p)]
    if plan.user is not None:
        system.run(["userdel", plan.user])
        removed.append(f"user {plan.user}")
    # userdel removes a user's own group on most hosts
    if plan.group is not None and system.group(plan.group) is not None:
        system.run(["groupdel", plan.group], check=False)
        removed.append(f"group {plan.group}")
    files = [*([plan.site] if plan.site else []), *plan.catch_alls]
    removed += [str(p) for p in files if writer.remove(p).changed]
    if plan.includes is not None and remove_tree(system, plan.includes):
        removed.append(str(plan.includes))
    return removed


def remove_purged(system: System, layout: Layout, plan: UninstallPlan) -> list[str]:
    """--purge, after the lock: data, secrets, certificates, integrator's state and (when empty)
    its own parent directories, and the SELinux rules."""
    removed = [str(p) for p in plan.purge if remove_tree(system, p)]
    for parent in plan.prune:  # integrator's own; gone with the last service
        with contextlib.suppress(OSError):  # not empty: other services still use it
            system.path(parent).rmdir()
            removed.append(str(parent))
    return removed + (remove_labels(system, layout) if plan.labels else [])
