"""`uninstall_plan.plan_uninstall` as tables: facts built by hand in, what to remove out.

No host: the ownership record, the live accounts/paths/units and conf.d's sites are plain data.
Each row is one case (a plain uninstall, --purge, a unit of the same name that is not ours,
accounts and directories someone else made, the last site vs. another one on the same port).
That the facts are read right and the plan is applied as it says is tests/test_host_ownership.py
and tests/test_host_lifecycle_plan.py (`uninstall_local` on a FakeHost).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

import pytest

from integrator.host.owned import GROUP, USER, Live, Node, Owned, managed_dirs, managed_paths, user_comment
from integrator.host.system import Account
from integrator.host.uninstall_plan import UninstallFacts, UninstallPlan, plan_uninstall
from integrator.layout import STATE_ROOT, Layout, profile

L = Layout("shop", profile("debian"))
HTTP, HTTPS, OTHER = (f"00-integrator-catch-all-{k}.conf" for k in ("http-80", "https-443", "https-8443"))
TLS = "    include /etc/nginx/integrator/tls.conf;\n"
SITE = f"server {{\n    listen 80;\n}}\nserver {{\n    listen 443 ssl;\n{TLS}}}\n"
ON_8443 = f"server {{\n    listen 8443 ssl;\n{TLS}}}\n"
DIRS = managed_dirs(L)
INODES = {str(d): (1, n) for n, d in enumerate(DIRS, start=10)}
OWNED = Owned("shop", {USER: 1001, GROUP: 1001}, dict(INODES), frozenset(str(p) for p in managed_paths(L)))
NODES: dict[str, Node | None] = {
    **{p: Node(i, 0, True) for p, i in INODES.items()},
    **{str(p): Node((1, 99), 0, False) for p in managed_paths(L)},
}
for _absent in L.tls_watch_unit_paths:  # no provided certificate: no watch units
    NODES[str(_absent)] = None
LIVE = Live(
    Account("shop", 1001, 1001, user_comment("shop")), Account("shop", 1001, 1001), NODES, foreign_units={}
)
ALONE = UninstallFacts(
    OWNED,
    LIVE,
    sites={"shop.conf": SITE},
    catch_alls=(HTTP, HTTPS),
    include_users=frozenset({"shop.conf", HTTPS}),
    includes_exist=True,
    state_dir_exists=True,
)
CONF_D = L.nginx_site.parent
UNITS = tuple(p for s in L.all_slots for p in s.unit_paths)  # both slots and a legacy pair, all present
PLAIN = UninstallPlan(
    stop=True,
    units=UNITS,
    trees=(L.root, L.runtime_dir),
    user="shop",
    group="shop",
    site=L.nginx_site,
    catch_alls=(CONF_D / HTTP, CONF_D / HTTPS),
    includes=L.nginx_include_dir,
    keep_record=True,
    purge=(),
    prune=(),
    labels=False,
)
KEPT_DIRS = tuple(d for d in DIRS if d != L.root)


def _with(facts: UninstallFacts, **live: Any) -> UninstallFacts:
    return replace(facts, live=replace(facts.live, **live))


def _gone(*paths: PurePosixPath) -> dict[str, Node | None]:
    return {**NODES, **{str(p): None for p in paths}}


def _other_site(port_text: str) -> UninstallFacts:
    sites = {**ALONE.sites, "blog.conf": port_text}
    return replace(ALONE, sites=sites, include_users=ALONE.include_users | {"blog.conf"})


CASES: dict[str, tuple[UninstallFacts, bool, UninstallPlan]] = {
    "the only service: everything of it, the shared catch-alls and includes": (ALONE, False, PLAIN),
    "--purge: also data, secrets, certificates, integrator's state and its parents, SELinux rules": (
        ALONE,
        True,
        replace(
            PLAIN,
            keep_record=False,
            purge=(*KEPT_DIRS, L.state_dir),
            prune=(STATE_ROOT, L.etc_dir.parent),
            labels=True,
        ),
    ),
    "--purge with the state directory already gone": (
        replace(ALONE, state_dir_exists=False),
        True,
        replace(PLAIN, keep_record=False, purge=KEPT_DIRS, prune=(STATE_ROOT, L.etc_dir.parent), labels=True),
    ),
    "a unit of the same name loaded from another file: ours removed, none stopped": (
        _with(ALONE, foreign_units={L.legacy.service_unit: "/lib/systemd/system/shop.service"}),
        False,
        replace(PLAIN, stop=False),
    ),
    "a provided certificate: the watch units go too": (
        _with(ALONE, nodes={**NODES, **{str(p): Node((1, 98), 0, False) for p in L.tls_watch_unit_paths}}),
        False,
        replace(PLAIN, units=(*UNITS, *L.tls_watch_unit_paths)),
    ),
    "unit files already gone: nothing to stop": (
        _with(ALONE, nodes=_gone(*UNITS)),
        False,
        replace(PLAIN, stop=False, units=()),
    ),
    "a user and group someone else made under the name: kept": (
        _with(ALONE, user=Account("shop", 2001, 2001, "admin's"), group=Account("shop", 2001, 2001)),
        False,
        replace(PLAIN, user=None, group=None),
    ),
    "/opt/shop replaced by another directory since: kept": (
        _with(ALONE, nodes={**NODES, str(L.root): Node((7, 7), 0, True)}),
        False,
        replace(PLAIN, trees=(L.runtime_dir,)),
    ),
    "another integrator site on the same ports: catch-alls and includes stay": (
        _other_site(SITE.replace("listen 80;", "listen 80;\n    server_name blog;")),
        False,
        replace(PLAIN, catch_alls=(), includes=None),
    ),
    "another site on another port only: this one's catch-alls go, the includes stay": (
        replace(_other_site(ON_8443), catch_alls=(HTTP, HTTPS, OTHER)),
        False,
        replace(PLAIN, includes=None),
    ),
    "the site is not ours (a file of the same name): kept, and it keeps its ports' catch-alls": (
        replace(ALONE, owned=replace(OWNED, paths=OWNED.paths - {str(L.nginx_site)})),
        False,
        replace(PLAIN, site=None, catch_alls=(), includes=None),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_uninstall(case: str) -> None:
    facts, purge, expected = CASES[case]
    assert plan_uninstall(L, facts, purge) == expected
