"""What `uninstall NAME` removes, decided by a pure function of the host's facts (HOST-SIDE).

`uninstall.py` probes the host once (`UninstallFacts`: the ownership record, the live accounts,
paths and units, conf.d's integrator sites), `plan_uninstall` decides (`UninstallPlan`), and
`uninstall.py` applies it. Only what integrator created and what is still that object is
removed (`owned.owns`); a unit of the same name that is not ours is never stopped; the shared
catch-alls and includes go with the last site that uses them. Tested as tables
(tests/test_uninstall_plan.py), without a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Optional

from ..layout import STATE_ROOT, Layout
from .nginxconf import unused_catch_alls_of
from .owned import GROUP, USER, Live, Owned, managed_dirs, owns, owns_account


@dataclass(frozen=True)
class UninstallFacts:
    """The host as `uninstall` found it, under the service's lock."""

    owned: Owned  # the ownership record, with what the host shows claimed
    live: Live  # accounts, managed paths (lstat) and units of the same name loaded from elsewhere
    sites: dict[str, str]  # conf.d's sites that use integrator's includes: file name -> text
    catch_alls: tuple[str, ...]  # the catch-all files in conf.d
    include_users: frozenset[str]  # every conf.d file (catch-alls too) that names the includes
    includes_exist: bool  # /etc/nginx/integrator is there
    state_dir_exists: bool  # integrator's own /var/lib/integrator/NAME


@dataclass(frozen=True)
class UninstallPlan:
    """What to remove, in this order; removing a path that is gone already is no change."""

    stop: bool  # systemctl disable --now the service and socket (and the certificate watch)
    units: tuple[PurePosixPath, ...]  # unit files; then daemon-reload and reset-failed
    trees: tuple[PurePosixPath, ...]  # /opt/NAME, /run/NAME
    user: Optional[str]  # userdel
    group: Optional[str]  # groupdel, if userdel left it
    site: Optional[PurePosixPath]  # the nginx site
    catch_alls: tuple[PurePosixPath, ...]  # catch-alls of ports no other site listens on
    includes: Optional[PurePosixPath]  # the shared includes, once no other file uses them
    keep_record: bool  # without --purge: the record keeps what is left of ours (data, secrets)
    purge: tuple[PurePosixPath, ...]  # --purge: data, secrets, certificates, integrator's state
    prune: tuple[PurePosixPath, ...]  # --purge: integrator's own parents, removed if now empty
    labels: bool  # --purge: the SELinux rules


def plan_uninstall(layout: Layout, facts: UninstallFacts, purge: bool) -> UninstallPlan:
    """Pure: the facts in, what to remove out."""
    owned, live = facts.owned, facts.live

    def ours(path: PurePosixPath) -> bool:
        return owns(owned, layout, live, path)

    units = tuple(
        p
        for p in (*(p for slot in layout.all_slots for p in slot.unit_paths), *layout.tls_watch_unit_paths)
        if ours(p)
    )
    trees = tuple(p for p in (layout.root, layout.runtime_dir) if ours(p))
    user = live.user is not None and owns_account(owned, USER, live.user)
    group = live.group is not None and owns_account(owned, GROUP, live.group)
    site = layout.nginx_site if ours(layout.nginx_site) else None
    # the sites that stay decide which catch-alls and includes stay
    staying = {n: t for n, t in facts.sites.items() if site is None or n != site.name}
    catch_alls = tuple(unused_catch_alls_of(staying, facts.catch_alls, layout))
    gone = {p.name for p in catch_alls} | ({site.name} if site else set())
    includes_used = bool(facts.include_users - gone)
    purged: tuple[PurePosixPath, ...] = ()
    if purge:
        purged = tuple(d for d in managed_dirs(layout) if d not in trees and ours(d))
        purged += (layout.state_dir,) if facts.state_dir_exists else ()
    return UninstallPlan(
        stop=bool(units) and not live.foreign_units,  # never stop a unit of the same name not ours
        units=units,
        trees=trees,
        user=layout.user if user else None,
        group=layout.user if group else None,
        site=site,
        catch_alls=catch_alls,
        includes=layout.nginx_include_dir if facts.includes_exist and not includes_used else None,
        keep_record=not purge,
        purge=purged,
        prune=(STATE_ROOT, layout.etc_dir.parent) if purge else (),
        labels=purge,
    )
