"""The deploy's facts and plan on a FakeHost below a temporary root (issue 13, item 2): real
files and openssl, fake systemctl/nginx and health check.

`decide` (release_facts.probe_release, then release_plan.plan_release): deploy or nothing to do,
and why; `deploy --plan` (what it prints, and that it changes nothing); `apply_release` changes
exactly the files its plan lists, and deciding again after it says "nothing to do"
(idempotence). `deployed` makes a served release with the deploy's own steps (TLS, secrets,
`activate`) except unpacking and building the venv. The plan alone, on facts built by hand, is
tests/test_release_plan.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from integrator.host import apply, bundleio, localca, releases, venvs
from integrator.host.activate import HostContext
from integrator.host.apply import apply_release, remove_releases
from integrator.host.bundleio import BundleInfo
from integrator.host.deploy import decide
from integrator.host.fs import FileWriter
from integrator.host.release_plan import plan_result
from integrator.host.releases import FAILED, OK, ReleaseRecord
from integrator.host.system import System
from integrator.host.tls import wanted_names
from integrator.layout import Layout
from integrator.result import Result
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


def why_redeploy(ctx: HostContext, info: BundleInfo, secrets: dict[str, Path]) -> str | None:
    return decide(ctx, info, secrets).reason


def plan_deploy(ctx: HostContext, info: BundleInfo, secrets: dict[str, Path]) -> Result:
    return plan_result(decide(ctx, info, secrets), ctx.layout)


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
    host.active.discard(ctx.layout.slot("a").service_unit)


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
    assert actions["/etc/systemd/system/shop-a.service"] == actions["/etc/nginx/conf.d/shop.conf"] == "create"
    assert set(actions.values()) == {"create"}
    assert data["restart"] == ["shop-a.socket", "shop-a.service", "nginx.service (reload)"]
    assert (data["activation"], data["slot"], data["drain"]) == ("start", "a", None)
    assert result.lines[0] == "plan for shop 1.0 (first deploy); nothing was changed"
    assert "  create  system user shop (no shell, no home)" in result.lines
    secret_diff = [line for line in result.lines if "s3cret" in line]
    assert secret_diff == []  # a secret's content is never shown


def test_plan_shows_the_release_command(host: FakeHost) -> None:
    spec = edit(SPEC, deploy={"release": ("flask", "db", "upgrade", "a b")})
    result = plan_deploy(ctx_for(host, spec), bundle(spec), secrets_of(host))
    assert result.data["release_command"] == ["flask", "db", "upgrade", "a b"]
    line = "  run     `flask db upgrade 'a b'` with the new venv, as shop (before the switch)"
    assert result.lines[-2] == line
    plain = plan_deploy(ctx_for(host), bundle(), secrets_of(host))
    assert plain.data["release_command"] == [] and not any("  run " in x for x in plain.lines)


def test_plan_when_nothing_changed_says_so(host: FakeHost) -> None:
    deployed(host)
    result = plan_deploy(ctx_for(host), bundle(), secrets_of(host))
    assert result.data["outcome"] == "unchanged" and result.data["changed"] is False
    assert result.lines == [f"shop 1.0: nothing to do (bundle aaaaaaaaaaaa is release {RID})"]


def test_plan_of_a_new_bundle_starts_the_other_slot_whatever_the_serving_one_has(host: FakeHost) -> None:
    ctx = deployed(host)
    host.add_user("shop", 990, "integrator service shop")
    host.path(ctx.layout.slot("a").socket_unit_path).write_text("# edited by hand\n")
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
    assert changed == {  # the edited shop-a.socket serves until the drain: not touched
        "/etc/systemd/system/shop-b.socket": "create",
        "/etc/systemd/system/shop-b.service": "create",  # it runs the new release
        "/opt/shop/serving.sock": "change",  # the switch: the link nginx connects through names shop-b's
        f"/opt/shop/releases/{rid}/gunicorn.conf.py": "create",
    }, changed
    assert data["restart"] == ["shop-b.socket", "shop-b.service"]  # nginx reads no file that changes
    assert f"    +workers = {SPEC.server.workers + 2}" in result.lines  # the new file's diff
    assert result.lines[-2].startswith("  restart shop-b.socket, shop-b.service; then health")
    assert (
        result.lines[-1]
        == "  then drain shop-a.service, shop-a.socket: once nginx has no connection left to it, stop"
    )


# --- cleanup after a successful deploy: what the plan names goes -------------------------------------


def test_remove_releases_removes_what_the_plan_names_and_keeps_recent_history(host: FakeHost) -> None:
    ctx = ctx_for(host, edit(SPEC, deploy={"keep_releases": 1}))
    ids = [f"r{n:02}" for n in range(60)]
    for rid in ids[-3:]:
        host.path(ctx.layout.release(rid) / "venv").mkdir(parents=True)
    releases.save_records(FileWriter(host), ctx.layout, [rec(rid, OK) for rid in ids])
    assert remove_releases(ctx, ("r57",)) == ["r57"]
    assert releases.release_ids(host, ctx.layout) == ["r58", "r59"]
    kept = [r.id for r in releases.load_records(host, ctx.layout)]
    assert kept == ids[-50:]  # history stays (up to 50 records)


def rec(rid: str, outcome: str) -> ReleaseRecord:
    return ReleaseRecord(rid, "2026-01-01T00:00:00Z", "me", "ab" * 32, "1.0", "3.11.2", outcome)


# --- apply does what the plan says, and nothing else ---------------------------------------------


def stub_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake host has no wheels: the release holds its spec and a venv stub (as `deployed`)."""

    def unpack(system: System, info: BundleInfo, layout: Layout, rid: str) -> Path:
        release = system.path(layout.release(rid))
        (release / "payload").mkdir(parents=True)
        (release / "payload/spec.json").write_text(json.dumps(info.spec.to_dict()))
        return release

    def venv(ctx: HostContext, info: BundleInfo, rid: str) -> venvs.VenvOutcome:
        real = ctx.system.path(ctx.layout.venv(rid))
        (real / "bin").mkdir(parents=True)
        (real / "pyvenv.cfg").write_text(f"version = {ctx.facts.python_short}.0\n")
        (real / "bin/python").write_text("#!/bin/sh\n")
        (real / "bin/python").chmod(0o755)
        return venvs.VenvOutcome(f"stub-{rid}", False, 0.0)

    monkeypatch.setattr(bundleio, "unpack_release", unpack)
    monkeypatch.setattr(apply, "build_venv", venv)


def _files(host: FakeHost, ctx: HostContext, rid: str) -> dict[str, tuple[bytes, int]]:
    """Every file below the root but the releases' contents (bar `rid`'s gunicorn.conf.py) and
    integrator's state (records, lock, ownership), and where the serving link points: what a plan
    lists."""
    skip = (str(ctx.layout.root) + "/", str(ctx.layout.state_dir) + "/")
    out = {}
    for p in host.root.rglob("*"):
        path = "/" + str(p.relative_to(host.root))
        if path == str(ctx.layout.upstream_link):
            out[path] = (os.readlink(p).encode(), 0)
        elif (
            p.is_file()
            and not p.is_symlink()
            and (not path.startswith(skip) or path == str(ctx.layout.gunicorn_conf(rid)))
        ):
            out[path] = (p.read_bytes(), p.stat().st_mode)
    return out


def _socket_edited(host: FakeHost, ctx: HostContext) -> None:
    host.path(ctx.layout.slot("a").socket_unit_path).write_text("# edited by hand\n")


def _rotate_secret(host: FakeHost, ctx: HostContext) -> None:
    (host.root.parent / "api_key").write_text("rotated\n")


MORE = edit(SPEC, service={"version": "1.1"}, server={"workers": 4})
APPLIED = [
    # (case, whether a release serves before, what changed then, spec and bundle deployed now)
    ("first deploy", False, _nothing, SPEC, SHA_A),
    ("a new version with more workers", True, _nothing, MORE, SHA_B),
    ("a rotated secret", True, _rotate_secret, SPEC, SHA_A),
    ("a certificate near expiry", True, _cert_near_expiry, SPEC, SHA_A),
    ("an edited socket unit", True, _socket_edited, SPEC, SHA_A),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "change", "spec", "sha"), [c[1:] for c in APPLIED], ids=[c[0] for c in APPLIED]
)
def test_apply_changes_exactly_what_the_plan_lists(
    host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
    before: bool,
    change: Callable[[FakeHost, HostContext], None],
    spec: ServiceSpec,
    sha: str,
) -> None:
    stub_release(monkeypatch)
    if before:
        change(host, deployed(host))
    ctx, info = ctx_for(host, spec), bundle(spec, sha)
    plan = decide(ctx, info, secrets_of(host))
    assert plan.reason is not None and plan.release_id is not None
    found = _files(host, ctx, plan.release_id)
    host.ran.clear()
    result = apply_release(ctx, info, plan, secrets_of(host))
    assert result.exit_code == 0, result.lines
    now = _files(host, ctx, plan.release_id)
    changed = sorted(p for p in {*found, *now} if found.get(p) != now.get(p))
    assert changed == sorted(str(c.path) for c in plan.changes if c.kind != "dir")
    assert all(host.path(c.path).is_dir() for c in plan.changes if c.kind == "dir")
    restarted = [r.split()[-1] for r in host.ran if r.startswith(("systemctl restart", "systemctl reload"))]
    assert restarted == [*plan.restart, *(["nginx.service"] if plan.reload_nginx else [])]
    assert os.readlink(host.path(ctx.layout.current)) == f"releases/{plan.release_id}"
    assert decide(ctx_for(host, spec), info, secrets_of(host)).reason is None  # applied: nothing left
