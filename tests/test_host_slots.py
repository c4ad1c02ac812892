"""Drain-first activations on a FakeHost: the slots alternate, the old one is stopped only after
the serving link points at the new one, nginx is reloaded only when a file it reads changed,
and a host deployed before slots (or before the link) is taken over.

What nginx and gunicorn do under load is tests/test_drain_e2e.py; here the order of the host's
commands and the files left, for every activation (deploy, rollback, repair, config).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.host import activate as activate_module
from integrator.host import fs, units
from integrator.host.activate import activate, previous_release
from integrator.host.apply import activation_for
from integrator.host.deploy import decide
from integrator.host.fs import FileWriter
from integrator.host.health import Probe
from integrator.host.lifecycle import rollback_local
from integrator.layout import Layout
from integrator.slots import Slot

from .host_fakes import RID, SHA_A, SHA_B, SPEC, FakeHost, bundle, ctx_for, deployed, make_host, secrets_of

LAYOUT = Layout.for_spec(SPEC, "debian")
R2 = "20260102T000000Z-bbbbbbbb"
A, B, LEGACY = LAYOUT.slot("a"), LAYOUT.slot("b"), LAYOUT.legacy


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    made = make_host(tmp_path / "root", monkeypatch)
    real = fs.replace_link

    def recorded(path: Path, target: str) -> None:  # the switch, in the order of commands
        made.ran.append(f"link {Path(path).name} -> {target}")
        real(path, target)

    monkeypatch.setattr(fs, "replace_link", recorded)
    return made


def link_to(slot: Slot) -> str:
    return f"link serving.sock -> {slot.socket_path}"


def deploy_new(host: FakeHost, sha: str = SHA_B) -> None:
    """The activation of a deploy of another release (as deploy_local runs it, without unpacking)."""
    deployed(host, sha=sha, rid=R2)


def index(host: FakeHost, command: str) -> int:
    return next(i for i, ran in enumerate(host.ran) if ran.startswith(command))


def test_a_deploy_starts_the_other_slot_links_it_then_stops_the_old_one_without_a_reload(
    host: FakeHost,
) -> None:
    deployed(host)
    assert units.serving_slot(host, LAYOUT) == A
    assert units.read_link(host, LAYOUT.upstream_link) == str(A.socket_path)
    host.ran.clear()
    deploy_new(host)
    assert units.serving_slot(host, LAYOUT) == B and {*B.units} <= host.active
    assert units.read_link(host, LAYOUT.upstream_link) == str(B.socket_path)
    assert not {*A.units} & host.active  # drained and stopped
    started = index(host, "systemctl restart shop-b.service")
    linked = index(host, link_to(B))
    stopped = index(host, "systemctl disable --now --quiet shop-a.service shop-a.socket")
    assert started < linked < stopped  # the old slot serves until the link names the new one
    assert not any(
        r.startswith(("systemctl restart shop-a", "systemctl stop shop-a")) for r in host.ran[:linked]
    )
    # only the app changed: nginx keeps its workers and every client its keep-alive connection
    assert not [r for r in host.ran if "reload nginx" in r or r.startswith("systemctl restart nginx")]
    assert host.path(A.service_unit_path).exists()  # kept, stopped: the next deploy starts there


def test_a_deploy_that_changes_the_site_reloads_nginx_after_linking(host: FakeHost) -> None:
    deployed(host)
    host.ran.clear()
    site = host.path(LAYOUT.nginx_site)
    site.write_text(site.read_text() + "# edited by hand\n")  # the deploy writes it again
    deploy_new(host)
    assert (
        index(host, link_to(B))
        < index(host, "systemctl reload nginx")
        < index(host, "systemctl disable --now --quiet shop-a.service")
    )
    assert "# edited by hand" not in site.read_text()


def test_a_failed_health_check_links_the_old_slot_again_before_stopping_the_new_one(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed(host)
    host.ran.clear()

    def through_nginx(ctx: object, deadline_s: float = 20.0) -> Probe:  # the new release fails there
        ok = units.read_link(host, LAYOUT.upstream_link) == str(A.socket_path)
        return Probe(ok, 200 if ok else 502, "" if ok else "502 Bad Gateway")

    monkeypatch.setattr(activate_module, "check_serving", through_nginx)
    ctx = ctx_for(host)
    outcome = activate(ctx, FileWriter(host), activation_for(ctx, R2), previous_release(host, LAYOUT, RID))
    assert not outcome.ok and outcome.restored is True and "502" in outcome.reason
    assert units.read_link(host, LAYOUT.upstream_link) == str(A.socket_path)
    assert (
        index(host, link_to(B))
        < index(host, link_to(A))
        < index(host, "systemctl disable --now --quiet shop-b.service")
    )
    assert {*A.units} <= host.active and not {*B.units} & host.active
    assert not [r for r in host.ran if "reload nginx" in r]  # nothing nginx reads was touched


def test_the_slots_alternate_and_a_rollback_drains_too(host: FakeHost) -> None:
    deployed(host)
    deploy_new(host)
    host.ran.clear()
    result = rollback_local(host, "shop", None)
    assert result.exit_code == 0, result.lines
    assert (
        units.serving_slot(host, LAYOUT) == A and {*A.units} <= host.active and not {*B.units} & host.active
    )
    assert index(host, link_to(A)) < index(host, "systemctl disable --now --quiet shop-b.service")
    assert not [r for r in host.ran if "reload nginx" in r]
    assert f"/releases/{RID}/" in host.path(A.service_unit_path).read_text()


def legacy_host(host: FakeHost) -> None:
    """What the code before slots left: NAME.service + NAME.socket on /run/NAME/gunicorn.sock."""
    deployed(host)
    for new, old in zip(A.unit_paths, LEGACY.unit_paths):
        text = host.path(new).read_text().replace("shop-a.socket", "shop.socket")
        host.path(old).write_text(text.replace(str(A.socket_path), str(LEGACY.socket_path)))
        host.path(new).unlink()
    site = host.path(LAYOUT.nginx_site)  # its upstream named the socket itself, there was no link
    site.write_text(site.read_text().replace(str(LAYOUT.upstream_link), str(LEGACY.socket_path)))
    host.path(LAYOUT.upstream_link).unlink()
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
    assert index(host, link_to(A)) < index(host, "systemctl reload nginx")  # the site now names the link
    assert index(host, "systemctl reload nginx") < index(host, "systemctl disable --now --quiet shop.service")
    assert decide(ctx_for(host), bundle(SPEC, SHA_A), secrets_of(host)).reason is None  # settled


def test_a_host_whose_site_names_a_slot_socket_gets_the_link_and_one_reload(host: FakeHost) -> None:
    deployed(host)  # then made what the code before the serving link left: no link, a socket named
    site = host.path(LAYOUT.nginx_site)
    site.write_text(site.read_text().replace(str(LAYOUT.upstream_link), str(A.socket_path)))
    host.path(LAYOUT.upstream_link).unlink()
    assert units.serving_slot(host, LAYOUT) == A
    host.ran.clear()
    deploy_new(host)
    assert (
        units.serving_slot(host, LAYOUT) == B and f"server unix:{LAYOUT.upstream_link};" in site.read_text()
    )
    linked, reloaded = index(host, link_to(B)), index(host, "systemctl reload nginx")
    assert linked < reloaded < index(host, "systemctl disable --now --quiet shop-a.service")
    host.ran.clear()
    deployed(host, sha=SHA_A, rid="20260103T000000Z-cccccccc")  # the next one is a link away
    assert units.serving_slot(host, LAYOUT) == A and not [r for r in host.ran if "reload nginx" in r]


@pytest.mark.parametrize(
    ("lines", "users"),
    [
        ([], 0),
        (["0000: 00000002 00000000 00010000 0001 01 17 /run/shop/gunicorn-a.sock"], 0),  # listening only
        (
            [
                "0000: 00000002 00000000 00010000 0001 01 17 /run/shop/gunicorn-a.sock",
                "0000: 00000003 00000000 00000000 0001 03 18 /run/shop/gunicorn-a.sock",  # accepted
                "0000: 00000003 00000000 00000000 0001 02 0 /run/shop/gunicorn-a.sock",  # queued
                "0000: 00000003 00000000 00000000 0001 03 19",  # nginx's end: no path
                "0000: 00000003 00000000 00000000 0001 03 20 /run/shop/gunicorn-b.sock",  # the other slot
            ],
            2,
        ),
    ],
)
def test_socket_users_are_the_connections_on_the_path_not_its_listener(lines: list[str], users: int) -> None:
    table = "\n".join(["Num       RefCount Protocol Flags    Type St Inode Path", *lines]) + "\n"
    assert units.count_socket_users(table, "/run/shop/gunicorn-a.sock") == users
