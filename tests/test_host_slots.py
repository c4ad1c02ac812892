"""Drain-first activations on a FakeHost: the slots alternate, the old one is stopped only after
nginx was switched to the new one, and a host deployed before slots is taken over.

What nginx and gunicorn do under load is tests/test_drain_e2e.py; here the order of the host's
commands and the files left, for every activation (deploy, rollback, repair, config).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.host import units
from integrator.host.deploy import decide
from integrator.host.lifecycle import rollback_local
from integrator.layout import Layout

from .host_fakes import RID, SHA_A, SHA_B, SPEC, FakeHost, bundle, ctx_for, deployed, make_host, secrets_of

LAYOUT = Layout.for_spec(SPEC, "debian")
R2 = "20260102T000000Z-bbbbbbbb"
A, B, LEGACY = LAYOUT.slot("a"), LAYOUT.slot("b"), LAYOUT.legacy


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    return make_host(tmp_path / "root", monkeypatch)


def deploy_new(host: FakeHost, sha: str = SHA_B) -> None:
    """The activation of a deploy of another release (as deploy_local runs it, without unpacking)."""
    deployed(host, sha=sha, rid=R2)


def index(host: FakeHost, command: str) -> int:
    return next(i for i, ran in enumerate(host.ran) if ran.startswith(command))


def test_a_deploy_starts_the_other_slot_switches_nginx_then_stops_the_old_one(host: FakeHost) -> None:
    deployed(host)
    assert units.serving_slot(host, LAYOUT) == A
    host.ran.clear()
    deploy_new(host)
    assert units.serving_slot(host, LAYOUT) == B and {*B.units} <= host.active
    assert not {*A.units} & host.active  # drained and stopped
    started = index(host, "systemctl restart shop-b.service")
    reload = index(host, "systemctl reload nginx")
    stopped = index(host, "systemctl disable --now --quiet shop-a.service shop-a.socket")
    assert started < reload < stopped  # the old slot serves until nginx routes to the new one
    assert not any(
        r.startswith(("systemctl restart shop-a", "systemctl stop shop-a")) for r in host.ran[:reload]
    )
    assert host.path(A.service_unit_path).exists()  # kept, stopped: the next deploy starts there


def test_the_slots_alternate_and_a_rollback_drains_too(host: FakeHost) -> None:
    deployed(host)
    deploy_new(host)
    host.ran.clear()
    result = rollback_local(host, "shop", None)
    assert result.exit_code == 0, result.lines
    assert (
        units.serving_slot(host, LAYOUT) == A and {*A.units} <= host.active and not {*B.units} & host.active
    )
    assert index(host, "systemctl reload nginx") < index(
        host, "systemctl disable --now --quiet shop-b.service"
    )
    assert f"/releases/{RID}/" in host.path(A.service_unit_path).read_text()


def legacy_host(host: FakeHost) -> None:
    """What the code before slots left: NAME.service + NAME.socket on /run/NAME/gunicorn.sock."""
    deployed(host)
    for new, old in zip(A.unit_paths, LEGACY.unit_paths):
        text = host.path(new).read_text().replace("shop-a.socket", "shop.socket")
        host.path(old).write_text(text.replace(str(A.socket_path), str(LEGACY.socket_path)))
        host.path(new).unlink()
    site = host.path(LAYOUT.nginx_site)
    site.write_text(site.read_text().replace(str(A.socket_path), str(LEGACY.socket_path)))
    host.active.difference_update(A.units)
    host.active.update(LEGACY.units)


def test_a_host_deployed_before_slots_is_taken_over_by_the_next_deploy(host: FakeHost) -> None:
    legacy_host(host)
    assert units.serving_slot(host, LAYOUT) == LEGACY
    host.ran.clear()
    deploy_new(host, sha=SHA_A)  # the same bundle again (the plan's reason for it: tests/test_release_plan)
    assert units.serving_slot(host, LAYOUT) == A and {*A.units} <= host.active
    assert not {*LEGACY.units} & host.active
    assert [p for p in LEGACY.unit_paths if host.path(p).exists()] == []
    assert index(host, "systemctl reload nginx") < index(host, "systemctl disable --now --quiet shop.service")
    assert decide(ctx_for(host), bundle(SPEC, SHA_A), secrets_of(host)).reason is None  # settled
