"""The deploy's decisions as tables, pyinfra style: host facts in, decision out (issue 13, item 2).

`why_redeploy` (deploy or nothing to do, and why), `plan_deploy` (what `deploy --plan` prints)
and `cleanup_releases`, on a FakeHost below a temporary root: real files, real openssl, fake
systemctl/nginx and health check. `deployed` applies a decision with the deploy's own steps
(TLS, secrets, `activate`) except unpacking and building the venv; deciding again after it
must say "nothing to do" (idempotence).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from integrator.host import localca, releases
from integrator.host.activate import HostContext
from integrator.host.deploy import cleanup_releases, why_redeploy
from integrator.host.deploy_plan import plan_deploy
from integrator.host.fs import FileWriter
from integrator.host.releases import FAILED, INTERRUPTED, OK, ReleaseRecord
from integrator.host.tls import wanted_names
from integrator.spec import ServiceSpec

from .host_fakes import RID, SHA_A, SHA_B, SPEC, FakeHost, bundle, ctx_for, deployed, make_host, secrets_of
from .spec_edit import edit


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    return make_host(tmp_path / "root", monkeypatch)


def make_cert(host: FakeHost, ctx: HostContext, names: list[str], days: int) -> None:
    """A self-signed certificate as tls.generate_self_signed makes it, but living `days` days."""
    cnf = host.root.parent / "req.cnf"
    cnf.write_text(localca.openssl_config(names[0], localca.leaf_extensions(names)))
    cert, key = host.path(ctx.layout.tls_cert), host.path(ctx.layout.tls_key)
    subprocess.run(
        ["openssl", "req", "-x509", "-new", *localca.EC_KEY, "-nodes", "-sha256", "-days", str(days),
         "-config", str(cnf), "-extensions", "ext", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip


# --- the table: facts in, reason out ---------------------------------------------------------


def _nothing(host: FakeHost, ctx: HostContext) -> None:
    pass


def _python_changed(host: FakeHost, ctx: HostContext) -> None:
    host.python_version = "3.12.1"


def _venv_broken(host: FakeHost, ctx: HostContext) -> None:
    host.path(ctx.layout.venv(RID) / "bin/python").unlink()


def _secret_changed(host: FakeHost, ctx: HostContext) -> None:
    (host.root.parent / "api_key").write_text("rotated\n")


def _cert_near_expiry(host: FakeHost, ctx: HostContext) -> None:
    make_cert(host, ctx, wanted_names(ctx.spec, ctx.facts.hostname), days=10)


def _site_edited(host: FakeHost, ctx: HostContext) -> None:
    host.path(ctx.layout.nginx_site).write_text("# edited by hand\n")


def _service_stopped(host: FakeHost, ctx: HostContext) -> None:
    host.active.discard(ctx.layout.service_unit)


def _unhealthy(host: FakeHost, ctx: HostContext) -> None:
    host.serving = False


def _last_deploy_failed(host: FakeHost, ctx: HostContext) -> None:
    records = releases.set_outcome(releases.load_records(host, ctx.layout), RID, FAILED)
    releases.save_records(FileWriter(host), ctx.layout, records)


def _current_gone(host: FakeHost, ctx: HostContext) -> None:
    host.path(ctx.layout.current).unlink()


VENV = f"/opt/shop/releases/{RID}/venv"
TLS = "/etc/integrator/shop/tls/cert.pem, /etc/integrator/shop/tls/key.pem"
NEW = f"new bundle (current release {RID})"
CHANGED = "configuration changed: "
RENAMED = edit(SPEC, http={"server_names": ("shop.example", "www.shop.example")})
REASONS: list[tuple[str, Callable[[FakeHost, HostContext], None], ServiceSpec, str, str | None]] = [
    # (case, what changed on the deployed host, spec deployed now, bundle sha, expected reason)
    ("no-op: same bundle, healthy", _nothing, SPEC, SHA_A, None),
    ("new bundle", _nothing, SPEC, SHA_B, NEW),
    ("same bundle, its deploy had failed", _last_deploy_failed, SPEC, SHA_A, NEW),
    ("no current release", _current_gone, SPEC, SHA_A, "first deploy"),
    ("host Python changed: venv stale", _python_changed, SPEC, SHA_A,
     f"rebuilding the venv: {VENV} was built for Python 3.11.2, the host now has 3.12"),
    ("venv python missing", _venv_broken, SPEC, SHA_A,
     f"rebuilding the venv: {VENV}/bin/python is missing or broken (the host's Python changed)"),
    ("secret changed", _secret_changed, SPEC, SHA_A, f"{CHANGED}/etc/integrator/shop/credentials/api_key"),
    ("certificate near expiry", _cert_near_expiry, SPEC, SHA_A, f"{CHANGED}{TLS}"),
    ("server names changed", _nothing, RENAMED, SHA_A, f"{CHANGED}{TLS}, /etc/nginx/conf.d/shop.conf"),
    ("a rendered file edited by hand", _site_edited, SPEC, SHA_A, f"{CHANGED}/etc/nginx/conf.d/shop.conf"),
    ("service stopped", _service_stopped, SPEC, SHA_A, f"release {RID} is not serving"),
    ("service active but failing its health check", _unhealthy, SPEC, SHA_A, f"release {RID} is not serving"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "spec", "sha", "expected"), [c[1:] for c in REASONS], ids=[c[0] for c in REASONS]
)
def test_why_redeploy(
    host: FakeHost,
    change: Callable[[FakeHost, HostContext], None],
    spec: ServiceSpec,
    sha: str,
    expected: str | None,
) -> None:
    change(host, deployed(host))
    assert why_redeploy(ctx_for(host, spec), bundle(spec, sha), secrets_of(host)) == expected


def test_first_deploy_on_an_empty_host(host: FakeHost) -> None:
    assert why_redeploy(ctx_for(host), bundle(), secrets_of(host)) == "first deploy"


@pytest.mark.parametrize(
    ("change", "spec"),
    [(c[1], c[2]) for c in REASONS if c[1] not in (_python_changed, _venv_broken, _current_gone)],
    ids=[c[0] for c in REASONS if c[1] not in (_python_changed, _venv_broken, _current_gone)],
)
def test_applying_the_decision_leaves_nothing_to_do(
    host: FakeHost, change: Callable[[FakeHost, HostContext], None], spec: ServiceSpec
) -> None:
    """pyinfra's idempotence: after the deploy it asked for, the same facts ask for nothing."""
    change(host, deployed(host))
    host.serving = True
    second = "20260102T000000Z-bbbbbbbb"
    deployed(host, spec, SHA_B, rid=second)
    assert why_redeploy(ctx_for(host, spec), bundle(spec, SHA_B), secrets_of(host)) is None
    assert os.readlink(host.path(ctx_for(host).layout.current)) == f"releases/{second}"


def test_a_venv_rebuilt_for_the_new_python_leaves_nothing_to_do(host: FakeHost) -> None:
    ctx = deployed(host)
    host.python_version = "3.12.1"
    assert why_redeploy(ctx_for(host), bundle(), secrets_of(host)) is not None
    (host.path(ctx.layout.venv(RID)) / "pyvenv.cfg").write_text("version = 3.12.1\n")
    assert why_redeploy(ctx_for(host), bundle(), secrets_of(host)) is None


# --- deploy --plan: what it prints, and that it changes nothing --------------------------------


def _listing(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))
    }


def test_plan_of_a_first_deploy(host: FakeHost) -> None:
    before = _listing(host.root)
    result = plan_deploy(ctx_for(host), bundle(), secrets_of(host))
    assert _listing(host.root) == before and not any(
        r.startswith(("systemctl start", "useradd")) for r in host.ran
    )
    data = result.data
    assert (data["reason"], data["previous"], data["create_user"]) == ("first deploy", None, "shop")
    assert str(data["release"]).endswith("-aaaaaaaa")
    actions = {f["path"]: f["action"] for f in data["files"]}
    assert actions["/etc/integrator/shop/credentials/api_key"] == "create"
    assert actions["/etc/integrator/shop/tls/cert.pem"] == "create"
    assert actions["/etc/systemd/system/shop.service"] == actions["/etc/nginx/conf.d/shop.conf"] == "create"
    assert set(actions.values()) == {"create"}
    assert data["restart"] == ["shop.service", "nginx.service (reload)"]
    assert result.lines[0] == "plan for shop 1.0 (first deploy); nothing was changed"
    assert "  create  system user shop (no shell, no home)" in result.lines
    secret_diff = [line for line in result.lines if "s3cret" in line]
    assert secret_diff == []  # a secret's content is never shown


def test_plan_when_nothing_changed_says_so(host: FakeHost) -> None:
    deployed(host)
    result = plan_deploy(ctx_for(host), bundle(), secrets_of(host))
    assert result.data["outcome"] == "unchanged" and result.data["changed"] is False
    assert result.lines == [f"shop 1.0: nothing to do (bundle aaaaaaaaaaaa is release {RID})"]


def test_plan_of_a_new_bundle_with_an_edited_socket_restarts_the_socket(host: FakeHost) -> None:
    ctx = deployed(host)
    host.add_user("shop", 990, "integrator service shop")
    host.path(ctx.layout.socket_unit_path).write_text("# edited by hand\n")
    more = edit(SPEC, server={"workers": SPEC.server.workers + 2})
    before = _listing(host.root)
    result = plan_deploy(ctx_for(host, more), bundle(more, SHA_B), secrets_of(host))
    assert _listing(host.root) == before
    data = result.data
    assert (data["reason"], data["previous"], data["create_user"]) == (
        f"new bundle (current release {RID})",
        RID,
        None,
    )
    rid = str(data["release"])
    changed = {f["path"]: f["action"] for f in data["files"]}
    assert changed == {
        "/etc/systemd/system/shop.socket": "change",
        "/etc/systemd/system/shop.service": "change",  # it runs the new release
        f"/opt/shop/releases/{rid}/gunicorn.conf.py": "create",
    }, changed
    assert data["restart"] == ["shop.socket", "shop.service", "nginx.service (reload)"]
    assert f"    +workers = {SPEC.server.workers + 2}" in result.lines  # the new file's diff
    assert result.lines[-1].startswith(
        "  restart shop.socket, shop.service, nginx.service (reload); then health"
    )


# --- cleanup after a successful deploy -----------------------------------------------------------


def rec(rid: str, outcome: str) -> ReleaseRecord:
    return ReleaseRecord(rid, "2026-01-01T00:00:00Z", "me", "ab" * 32, "1.0", "3.11.2", outcome)


CLEANUP = [
    # (case, releases on disk with their outcome (None: no record), current, keep, removed)
    ("nothing beyond keep", [("r1", OK), ("r2", OK)], "r2", 3, []),
    ("old good ones go", [("r1", OK), ("r2", OK), ("r3", OK), ("r4", OK)], "r4", 2, ["r1", "r2"]),
    ("failed releases never push out the rollback target",
     [("r1", OK), ("r2", FAILED), ("r3", FAILED), ("r4", INTERRUPTED), ("r5", OK)], "r5", 2, ["r2", "r3"]),
    ("an unrecorded directory is cleaned like a failure",
     [("r1", OK), ("r2", None), ("r3", OK), ("r4", OK)], "r4", 2, ["r1", "r2"]),
    ("keep 0 keeps only current", [("r1", OK), ("r2", FAILED), ("r3", OK)], "r3", 0, ["r1", "r2"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("on_disk", "current", "keep", "removed"), [c[1:] for c in CLEANUP], ids=[c[0] for c in CLEANUP]
)
def test_cleanup_releases(
    host: FakeHost, on_disk: list[tuple[str, str | None]], current: str, keep: int, removed: list[str]
) -> None:
    ctx = ctx_for(host, edit(SPEC, deploy={"keep_releases": keep}))
    for rid, _ in on_disk:
        host.path(ctx.layout.release(rid) / "venv").mkdir(parents=True)
    records = [rec(rid, outcome) for rid, outcome in on_disk if outcome is not None]
    records.append(rec("r0", FAILED))  # a record whose directory is already gone: kept as history
    releases.save_records(FileWriter(host), ctx.layout, records)
    assert cleanup_releases(ctx, current) == removed
    assert releases.release_ids(host, ctx.layout) == [rid for rid, _ in on_disk if rid not in removed]
    kept = [r["id"] for r in json.loads(host.path(ctx.layout.releases_record).read_text())["releases"]]
    assert kept == sorted(r.id for r in records)  # history stays (up to 50 records)
    assert cleanup_releases(ctx, current) == []  # cleaning again removes nothing


def test_cleanup_keeps_only_recent_history(host: FakeHost) -> None:
    ctx = ctx_for(host, edit(SPEC, deploy={"keep_releases": 1}))
    ids = [f"r{n:02}" for n in range(60)]
    for rid in ids[-2:]:
        host.path(ctx.layout.release(rid)).mkdir(parents=True)
    releases.save_records(FileWriter(host), ctx.layout, [rec(rid, OK) for rid in ids])
    assert cleanup_releases(ctx, ids[-1]) == []  # r58 is the rollback target
    kept = [r.id for r in releases.load_records(host, ctx.layout)]
    assert kept == ids[-50:]
