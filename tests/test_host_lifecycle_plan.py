"""Rollback, repair, uninstall, secrets and the nginx-site check as tables: facts in, decision out.

On a FakeHost below a temporary root (real files and openssl; fake systemctl, nginx and health
check), with releases made by the deploy's own steps (host_fakes.deployed). Each decision is
also taken twice where that means something: the second time finds nothing left to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest

from integrator.errors import HostError, UsageError
from integrator.host import releases, units
from integrator.host.fs import CHANGE, CREATE, UNCHANGED, FileWriter
from integrator.host.lifecycle import rollback_local
from integrator.host.nginxconf import check_site_fits
from integrator.host.releases import DEPLOYING, FAILED, INTERRUPTED, OK, ROLLED_BACK, DeployLock
from integrator.host.repair import installed_unit_release, repair_interrupted
from integrator.host.secrets import check_secrets, install_secrets
from integrator.host.uninstall import uninstall_local
from integrator.layout import Layout
from integrator.render import render_all
from integrator.spec import ServiceSpec

from .host_fakes import SHA_A, SHA_B, SPEC, FakeHost, deployed, make_host
from .spec_edit import make

R1, R2, R3 = (f"2026010{n}T000000Z-aaaaaaaa" for n in (1, 2, 3))
LAYOUT = Layout.for_spec(SPEC, "debian")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    return make_host(tmp_path / "root", monkeypatch)


def with_releases(host: FakeHost, outcomes: list[tuple[str, str]], current: str) -> None:
    """Releases deployed in order with these outcomes; `current` is the one serving."""
    for rid, outcome in outcomes:
        deployed(host, rid=rid, outcome=outcome)
    if current != outcomes[-1][0]:
        deployed(host, rid=current, outcome=OK)  # its units and site back, `current` at it
        host.path(LAYOUT.release(outcomes[-1][0])).mkdir(exist_ok=True)


def state(host: FakeHost) -> tuple[str, str | None, dict[str, str]]:
    """What a rollback decides: where `current` points, what the unit runs, the outcomes."""
    current = os.readlink(host.path(LAYOUT.current)).split("/")[-1]
    records = {r.id: r.outcome for r in releases.load_records(host, LAYOUT)}
    return current, installed_unit_release(host, LAYOUT), records


# --- rollback ------------------------------------------------------------------------------------

ROLLBACKS = [
    # (case, releases and outcomes, current, --to, expected (current, unit runs, outcomes) or error)
    ("to the previous good", [(R1, OK), (R2, OK)], R2, None, (R1, R1, {R1: OK, R2: ROLLED_BACK})),
    ("past failed releases", [(R1, OK), (R2, FAILED), (R3, OK)], R3, None,
     (R1, R1, {R1: OK, R2: FAILED, R3: ROLLED_BACK})),
    ("a rolled-back release is a target", [(R1, ROLLED_BACK), (R2, OK)], R2, None,
     (R1, R1, {R1: OK, R2: ROLLED_BACK})),
    ("--to an older one", [(R1, OK), (R2, OK), (R3, OK)], R3, R1,
     (R1, R1, {R1: OK, R2: OK, R3: ROLLED_BACK})),
    ("--to the current one: written again", [(R1, OK), (R2, OK)], R2, R2, (R2, R2, {R1: OK, R2: OK})),
    ("--to a failed one: still tried, ok if healthy", [(R1, OK), (R2, FAILED), (R3, OK)], R3, R2,
     (R2, R2, {R1: OK, R2: OK, R3: ROLLED_BACK})),
    ("none earlier", [(R1, OK)], R1, None, "shop has no earlier good release"),
    ("only failed ones earlier", [(R1, FAILED), (R2, INTERRUPTED), (R3, OK)], R3, None,
     "shop has no earlier good release"),
    ("--to an unknown id", [(R1, OK), (R2, OK)], R2, "20250101T000000Z-ffffffff",
     "no release '20250101T000000Z-ffffffff' of shop"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "current", "to", "expected"), [c[1:] for c in ROLLBACKS], ids=[c[0] for c in ROLLBACKS]
)
def test_rollback(
    host: FakeHost,
    history: list[tuple[str, str]],
    current: str,
    to: str | None,
    expected: tuple[str, str, dict[str, str]] | str,
) -> None:
    with_releases(host, history, current)
    before = state(host)
    if isinstance(expected, str):
        with pytest.raises(HostError) as err:
            rollback_local(host, "shop", to)
        assert err.value.message == expected
        assert state(host) == before  # refused: nothing changed
        return
    result = rollback_local(host, "shop", to)
    assert result.exit_code == 0 and result.data["release"] == expected[0]
    assert state(host) == expected
    serving = units.serving_slot(host, LAYOUT)
    assert serving is not None and serving.service_unit in host.active
    others = [u for s in LAYOUT.all_slots if s != serving for u in s.units]
    assert not set(others) & host.active  # the slot that served before the rollback was drained
    if to is None:  # deciding again: nowhere earlier to go, and nothing changes
        with pytest.raises(HostError, match="no earlier good release"):
            rollback_local(host, "shop", None)
        assert state(host) == expected


def test_rollback_to_a_release_removed_from_the_host(host: FakeHost) -> None:
    with_releases(host, [(R1, OK), (R2, OK)], R2)
    host.path(LAYOUT.release(R1) / "venv/bin/python").unlink()
    for p in sorted(host.path(LAYOUT.release(R1)).rglob("*"), reverse=True):
        p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
    host.path(LAYOUT.release(R1)).rmdir()
    with pytest.raises(HostError, match=f"release {R1} of shop was removed from the host"):
        rollback_local(host, "shop", None)
    assert state(host)[:2] == (R2, R2)


def test_a_rollback_that_fails_its_health_check_restores_current(host: FakeHost) -> None:
    with_releases(host, [(R1, OK), (R2, OK)], R2)

    def broken_then_restored() -> None:  # R1 comes up broken in slot a; stopping it, R2 serves again
        host.serving = False
        host.on("systemctl disable --now --quiet shop-a.service", lambda: setattr(host, "serving", True))

    host.on("systemctl restart shop-a.service", broken_then_restored)
    result = rollback_local(host, "shop", None)
    assert result.exit_code == 1 and result.lines[0].startswith(
        f"rollback of shop to {R1} failed: health check"
    )
    assert result.lines[1] == f"release {R2} still serving"
    assert state(host) == (R2, R2, {R1: OK, R2: OK})


# --- repair: what a deploy killed part-way left ---------------------------------------------------


def killed(host: FakeHost, step: str, switched: bool = False) -> None:
    """R1 serves from slot a; a deploy of R2 died at `step` (units of R2 written into slot b from
    step `write` on)."""
    deployed(host, rid=R1)
    records = releases.upsert(
        releases.load_records(host, LAYOUT),
        releases.ReleaseRecord(R2, "2026-01-02T00:00:00Z", "me", SHA_A, "1.0", "3.11.2", DEPLOYING),
    )
    releases.save_records(FileWriter(host), LAYOUT, records)
    host.path(LAYOUT.venv(R2)).mkdir(parents=True)
    (host.path(LAYOUT.release(R2)) / "payload").mkdir()
    (host.path(LAYOUT.release(R2)) / "payload/spec.json").write_text(json.dumps(SPEC.to_dict()))
    if step not in ("unpack", "venv", "tls"):
        FileWriter(host).put_rendered(render_all(SPEC, LAYOUT, R2, slot="b"))
    if switched:
        os.replace(host.path(LAYOUT.current), host.path(LAYOUT.release(R2)).parent / "tmp")
        os.symlink(f"releases/{R2}", host.path(LAYOUT.current))
    host.path(LAYOUT.lock_file).write_text(f"4242 {step}\n")


REPAIRS = [
    # (case, step it died at, current switched to R2, R1 healthy, expected (serving, current, unit runs,
    #  R2's outcome, whether the units were restarted))
    ("killed while building the venv", "venv", False, True, (True, R1, R1, INTERRUPTED, False)),
    ("killed at its health check", "health", False, True, (True, R1, R1, INTERRUPTED, True)),
    ("killed at its health check, R1 broken", "health", False, False, (False, R1, R1, INTERRUPTED, True)),
    ("killed after the switch", "switch", True, True, (True, R2, R2, OK, True)),
]


@pytest.mark.parametrize(
    ("step", "switched", "healthy", "expected"), [c[1:] for c in REPAIRS], ids=[c[0] for c in REPAIRS]
)
def test_repair_interrupted(
    host: FakeHost, step: str, switched: bool, healthy: bool, expected: tuple[bool, str, str, str, bool]
) -> None:
    killed(host, step, switched)
    host.serving = healthy
    host.ran.clear()
    with DeployLock(host, LAYOUT) as lock:
        repair = repair_interrupted(host, LAYOUT, lock)
    current, runs, outcomes = state(host)
    restarted = any(
        r in host.ran for r in ("systemctl restart shop-a.service", "systemctl restart shop-b.service")
    )
    assert (repair.serving, current, runs, outcomes[R2], restarted) == expected
    assert outcomes[R1] == OK
    assert host.path(LAYOUT.venv(R2)).exists() == switched  # a dead release keeps no venv
    assert repair.lines[0].startswith(f"found an interrupted deploy of {R2} (pid 4242 died at step {step})")
    with DeployLock(host, LAYOUT) as lock:  # the next one finds nothing to repair
        again = repair_interrupted(host, LAYOUT, lock)
    assert again.found is None and again.lines == []


def test_repair_after_a_killed_first_deploy_says_deploy_again(host: FakeHost) -> None:
    host.path(LAYOUT.lock_file).parent.mkdir(parents=True)
    host.path(LAYOUT.lock_file).write_text("4242 unpack\n")
    with DeployLock(host, LAYOUT) as lock:
        repair = repair_interrupted(host, LAYOUT, lock)
    assert repair.serving is False and host.ran == []
    assert repair.lines == [
        "found an interrupted deploy or rollback (pid 4242 died at step unpack): no release served "
        "before it; deploy again (or uninstall)"
    ]


def test_rollback_without_to_after_a_killed_deploy_is_the_repair(host: FakeHost) -> None:
    killed(host, "health")
    result = rollback_local(host, "shop", None)
    undone = f"(the interrupted deploy of {R2} is undone)"
    assert result.lines[-1] == f"rolled back: release {R1} serves again {undone}"
    assert state(host) == (R1, R1, {R1: OK, R2: INTERRUPTED})


# --- uninstall of a half-installed service -------------------------------------------------------


def _no_site(host: FakeHost) -> None:
    host.path(LAYOUT.nginx_site).unlink()


def _no_units(host: FakeHost) -> None:
    host.path(LAYOUT.slot("a").service_unit_path).unlink()
    host.path(LAYOUT.slot("a").socket_unit_path).unlink()
    host.active.difference_update(LAYOUT.slot("a").units)


def _no_user(host: FakeHost) -> None:
    del host.users["shop"], host.groups["shop"]


def _no_release_tree(host: FakeHost) -> None:
    for p in sorted(host.path(LAYOUT.root).rglob("*"), reverse=True):
        p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
    host.path(LAYOUT.root).rmdir()


HALF = [
    ("site removed by hand", _no_site),
    ("units removed by hand", _no_units),
    ("user deleted by hand", _no_user),
    ("release tree deleted", _no_release_tree),
]


@pytest.mark.parametrize("damage", [c[1] for c in HALF], ids=[c[0] for c in HALF])
@pytest.mark.parametrize("purge", [False, True])
def test_uninstall_of_a_half_installed_service(
    host: FakeHost, damage: Callable[[FakeHost], None], purge: bool
) -> None:
    deployed(host)
    damage(host)
    result = uninstall_local(host, "shop", purge)
    assert result.exit_code == 0 and result.data["kept"] == []
    gone = [LAYOUT.root, LAYOUT.nginx_site, *(p for s in LAYOUT.all_slots for p in s.unit_paths)]
    assert [p for p in gone if host.path(p).exists()] == []
    assert "shop" not in host.users and not {u for s in LAYOUT.all_slots for u in s.units} & host.active

    kept = [LAYOUT.credentials_dir / "api_key", LAYOUT.tls_cert]
    assert [host.path(p).exists() for p in kept] == [not purge, not purge]
    assert host.path(LAYOUT.state_dir).exists() == (not purge)
    if purge:  # again: nothing left to uninstall
        with pytest.raises(HostError, match="shop is not installed on this host"):
            uninstall_local(host, "shop", True)
    else:  # again: nothing more is removed, the kept data stays
        assert uninstall_local(host, "shop", False).data["removed"] == []
        assert host.path(LAYOUT.credentials_dir / "api_key").exists()


def test_uninstall_removes_both_slots(host: FakeHost) -> None:
    deployed(host)
    deployed(host, sha=SHA_B, rid=R2)  # into slot b; a drained, its unit files stay for the next deploy
    slot_files = [p for s in LAYOUT.slots for p in s.unit_paths]
    assert all(host.path(p).exists() for p in slot_files)
    assert uninstall_local(host, "shop", False).exit_code == 0
    assert [p for p in slot_files if host.path(p).exists()] == []
    assert not {u for s in LAYOUT.slots for u in s.units} & host.active


def test_uninstall_reports_an_nginx_that_fails_its_test_afterwards(host: FakeHost) -> None:
    deployed(host)
    host.nginx_valid = False  # another site broke it
    host.ran.clear()
    result = uninstall_local(host, "shop", False)
    assert result.exit_code == 1 and "nginx -t fails after removing shop's site" in result.lines[-1]
    assert not host.path(LAYOUT.nginx_site).exists()
    assert [r for r in host.ran if "reload" in r and "nginx" in r] == []  # nginx keeps its config


# --- secrets ---------------------------------------------------------------------------------------

NO_SECRETS = make("shop", "1.0", "shop:app")
SECRETS = [
    # (case, spec, content on the host before (None: none), supplied content (None: not supplied),
    #  expected action on the secret file (None: no change listed), content on the host after)
    ("no secrets in the spec", NO_SECRETS, None, "x", None, None),
    ("first time", SPEC, None, "s3cret\n", CREATE, "s3cret\n"),
    ("same again", SPEC, "s3cret\n", "s3cret\n", UNCHANGED, "s3cret\n"),
    ("rotated", SPEC, "s3cret\n", "rotated\n", CHANGE, "rotated\n"),
    ("not supplied: the host's is kept", SPEC, "s3cret\n", None, None, "s3cret\n"),
]


@pytest.mark.parametrize(
    ("spec", "before", "supplied", "action", "after"), [c[1:] for c in SECRETS], ids=[c[0] for c in SECRETS]
)
def test_install_secrets(
    host: FakeHost,
    tmp_path: Path,
    spec: ServiceSpec,
    before: str | None,
    supplied: str | None,
    action: str | None,
    after: str | None,
) -> None:
    secret = host.path(LAYOUT.credentials_dir / "api_key")
    if before is not None:
        writer = FileWriter(host)
        writer.ensure_dir(LAYOUT.etc_dir, 0o755)
        writer.ensure_dir(LAYOUT.credentials_dir, 0o700)
        writer.put(LAYOUT.credentials_dir / "api_key", before, 0o600)
    given = {}
    if supplied is not None:
        (tmp_path / "given").write_text(supplied)
        given = {"api_key": tmp_path / "given"}
    changes = install_secrets(FileWriter(host), spec, LAYOUT, given)
    actions = {str(c.path): c.action for c in changes}
    assert actions.get(str(LAYOUT.credentials_dir / "api_key")) == action
    assert all(c.diff == "" for c in changes if c.path.name == "api_key")  # content never shown
    assert (secret.read_text() if secret.exists() else None) == after
    if after is not None:
        assert secret.stat().st_mode & 0o777 == 0o600
        assert host.path(LAYOUT.credentials_dir).stat().st_mode & 0o777 == 0o700
    again = install_secrets(FileWriter(host), spec, LAYOUT, given)
    assert [c for c in again if c.changed] == []  # applied: nothing left to do


# --- does our site fit the host's nginx? ---------------------------------------------------------

OTHER = (
    "# configuration file /etc/nginx/conf.d/other.conf:\nserver {{ listen {listen}; server_name {names}; }}\n"
)
SITES = [
    # (case, `nginx -T` output (None: it fails), spec, expected error fragment or None)
    ("no other site", "", SPEC, None),
    ("another name on our port", OTHER.format(listen="443 ssl", names="other.example"), SPEC, None),
    ("our name on another port", OTHER.format(listen="8443 ssl", names="shop.example"), SPEC, None),
    ("our name on our port", OTHER.format(listen="443 ssl", names="shop.example"), SPEC,
     "/etc/nginx/conf.d/other.conf already serves shop.example on port 443"),
    ("a second default server", OTHER.format(listen="80 default_server", names="_"),
     make("shop", "1.0", "shop:app", http={"default_server": True}),
     "/etc/nginx/conf.d/other.conf already is nginx's default server for port 80"),
    ("our own site as deployed",
     OTHER.replace("other", "shop").format(listen="443 ssl", names="shop.example"), SPEC, None),
    ("nginx -T fails: left to nginx -t", None, SPEC, None),
]  # fmt: skip


@pytest.mark.parametrize(("dump", "spec", "error"), [c[1:] for c in SITES], ids=[c[0] for c in SITES])
def test_check_site_fits(host: FakeHost, dump: str | None, spec: ServiceSpec, error: str | None) -> None:
    host.nginx_dump = dump
    if error is None:
        check_site_fits(host, spec, LAYOUT)
    else:
        with pytest.raises(HostError, match="nginx site would clash") as err:
            check_site_fits(host, spec, LAYOUT)
        assert error in err.value.message and "\n" not in err.value.message
    assert host.ran == ["nginx -T -q"]


def test_check_secrets_and_site_refuse_before_anything_is_written(host: FakeHost) -> None:
    """The deploy's checks run before any change: a clash leaves the host as it was."""
    host.nginx_dump = OTHER.format(listen="443 ssl", names="shop.example")
    before = sorted(str(p) for p in host.root.rglob("*"))
    with pytest.raises(HostError):
        check_site_fits(host, SPEC, LAYOUT)
    with pytest.raises(UsageError, match="secret 'api_key' is required"):
        check_secrets(host, SPEC, LAYOUT, {})
    assert sorted(str(p) for p in host.root.rglob("*")) == before
