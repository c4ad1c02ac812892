"""The deploy's decisions as tables, pyinfra style: host facts in, decision out (issue 13, item 2).

`why_redeploy` (deploy or nothing to do, and why), `plan_deploy` (what `deploy --plan` prints)
and `cleanup_releases`, on a FakeHost below a temporary root: real files, real openssl, fake
systemctl/nginx and health check. `deployed` applies a decision with the deploy's own steps
(TLS, secrets, `activate`) except unpacking and building the venv; deciding again after it
must say "nothing to do" (idempotence).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from integrator.errors import CheckFailed
from integrator.host import localca, releases
from integrator.host.activate import HostContext
from integrator.host.apply import remove_releases
from integrator.host.bundleio import BundleInfo
from integrator.host.changes import CHANGE, CREATE
from integrator.host.deploy import decide
from integrator.host.facts import HostFacts
from integrator.host.fs import FileWriter
from integrator.host.release_facts import FileFacts, FileState, ReleaseFacts, secret_dirs, tree_dirs
from integrator.host.release_plan import ReleasePlan, plan_release, plan_result
from integrator.host.releases import FAILED, INTERRUPTED, OK, ReleaseRecord
from integrator.host.tls import CertFacts, TlsFacts, wanted_names
from integrator.layout import Layout
from integrator.render import render_all
from integrator.result import Result
from integrator.spec import ServiceSpec, TlsSpec

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


# --- plan_release alone: facts built by hand, no host at all ------------------------------------

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400
HOST = HostFacts(
    "debian", "Debian 12", "host1", (1, 22, 1), "/usr/bin/python3", (3, 11, 2), "x86_64", 252, False
)
R1, R2, R3, R4, R5 = (f"2027010{n}T000000Z-aaaaaaaa" for n in range(1, 6))
NEW = "20270115T080000Z-bbbbbbbb"  # what a bundle with SHA_B deployed at NOW is called
LAYOUT = Layout.for_spec(SPEC, "debian")
SECRET = LAYOUT.credentials_dir / "api_key"
DIGEST, ROTATED = hashlib.sha256(b"s3cret\n").hexdigest(), hashlib.sha256(b"rotated\n").hexdigest()
IDS = {("root", "root"): (0, 0)}
NOTHING = FileFacts({}, frozenset(), IDS, {}, ())
NO_TLS = TlsFacts(None, False, False, False, False, (False, False))
EMPTY = ReleaseFacts(HOST, NOW, None, (), frozenset(), (), None, False, False, NO_TLS, NOTHING, None)


def cert(spec: ServiceSpec, days_left: int = 300, self_issued: bool = True) -> TlsFacts:
    names = frozenset(wanted_names(spec, HOST.hostname))
    facts = CertFacts(NOW - (365 - days_left) * DAY, NOW + days_left * DAY, names, self_issued)
    return TlsFacts(facts, True, True, True, False, (False, False))


def state(data: bytes, mode: int = 0o644) -> FileState:
    return FileState(hashlib.sha256(data).hexdigest(), mode, 0, 0, data)


def files_of(spec: ServiceSpec, rid: str) -> FileFacts:
    """The files of release `rid` of `spec` as a deploy wrote them, with the secret."""
    rendered = render_all(spec, LAYOUT, rid, nginx_version=HOST.nginx_version)
    files = {f.path: state(f.content.encode(), f.mode) for f in rendered}
    files[SECRET] = FileState(DIGEST, 0o600, 0, 0)
    dirs = frozenset(p for p, _ in (*tree_dirs(LAYOUT), *secret_dirs(LAYOUT)))
    site = {LAYOUT.nginx_site.name: next(f.content for f in rendered if f.path == LAYOUT.nginx_site)}
    catch_alls = tuple(f.path.name for f in rendered if "catch-all" in f.path.name)
    return FileFacts(files, dirs, IDS, site, catch_alls)


def served(
    spec: ServiceSpec = SPEC, history: tuple[tuple[str, str], ...] = ((R1, OK),), **changed: object
) -> ReleaseFacts:
    """A host where the last release of `history` is current, healthy, deployed from SHA_A."""
    current = history[-1][0]
    records = tuple(ReleaseRecord(r, "", "", SHA_A, "1.0", "3.11.2", o) for r, o in history)
    ids = tuple(r for r, _ in history)
    facts = ReleaseFacts(HOST, NOW, current, records, frozenset(ids), ids, (3, 11, 2), True, True, cert(spec),
                         files_of(spec, current), True)  # fmt: skip
    return replace(facts, **changed)  # type: ignore[arg-type]


def info(spec: ServiceSpec = SPEC, sha: str = SHA_A) -> BundleInfo:
    return BundleInfo(Path("/nowhere/shop.pyz"), sha, spec, None)


def summary(plan: ReleasePlan) -> tuple[object, ...]:
    return plan.reason, plan.release_id, plan.create_user, plan.restart, plan.cleanup


V11 = replace(SPEC, version="1.1")
LOCAL_CA = replace(SPEC, tls=TlsSpec(mode="local-ca"))
SERVICE, SOCKET = "shop.service", "shop.socket"
FIRST = [LAYOUT.root, LAYOUT.releases, LAYOUT.state_dir, LAYOUT.tls_cert, LAYOUT.tls_key, LAYOUT.etc_dir,
         LAYOUT.credentials_dir, SECRET]  # fmt: skip
FIRST_FILES = {str(p): CREATE for p in FIRST}
FIRST_FILES.update({str(f.path): CREATE for f in render_all(SPEC, LAYOUT, NEW)})
GUNICORN_NEW, UNIT = str(LAYOUT.gunicorn_conf(NEW)), str(LAYOUT.service_unit_path)
NEWER = {UNIT: CHANGE, GUNICORN_NEW: CREATE}  # a new release of another bundle
KEEP2 = replace(SPEC, keep_releases=2)
SAME = "20270115T080000Z-aaaaaaaa"  # the same bundle deployed again at NOW
AGAIN = {UNIT: CHANGE, str(LAYOUT.gunicorn_conf(SAME)): CREATE}  # a new release of the same bundle
PLANS: list[tuple[str, ReleaseFacts, BundleInfo, str, tuple[object, ...], dict[str, str]]] = [
    # (case, facts, bundle, the supplied secret's digest, (reason, release, user, restart, cleanup), changes)
    ("first deploy", EMPTY, info(SPEC, SHA_B), DIGEST,
     ("first deploy", NEW, "shop", (SERVICE,), ()), FIRST_FILES),
    ("no-op: same bundle, healthy", served(), info(), DIGEST, (None, R1, None, (), ()), {}),
    ("a new version", served(), info(V11, SHA_B), DIGEST,
     (f"new bundle (current release {R1})", NEW, None, (SERVICE,), ()), NEWER),
    ("the host's Python changed", served(host=replace(HOST, python_version=(3, 12, 1))), info(), DIGEST,
     (f"rebuilding the venv: {LAYOUT.venv(R1)} was built for Python 3.11.2, the host now has 3.12",
      SAME, None, (SERVICE,), ()), AGAIN),
    ("the secret changed", served(), info(), ROTATED,
     (f"configuration changed: {SECRET}", SAME, None, (SERVICE,), ()), {str(SECRET): CHANGE, **AGAIN}),
    ("the certificate expires in 10 days", served(tls=cert(SPEC, days_left=10)), info(), DIGEST,
     (f"configuration changed: {LAYOUT.tls_cert}, {LAYOUT.tls_key}", SAME, None, (SERVICE,), ()),
     {str(LAYOUT.tls_cert): CHANGE, str(LAYOUT.tls_key): CHANGE, **AGAIN}),
    ("TLS mode self-signed -> local-ca", served(), info(LOCAL_CA, SHA_B), DIGEST,
     (f"new bundle (current release {R1})", NEW, None, (SERVICE,), ()),
     {str(LAYOUT.local_ca_cert): CREATE, str(LAYOUT.local_ca_key): CREATE, str(LAYOUT.tls_cert): CHANGE,
      str(LAYOUT.tls_key): CHANGE, UNIT: CHANGE, GUNICORN_NEW: CREATE, str(LAYOUT.nginx_site): CHANGE}),
    ("not serving", served(serving=False), info(), DIGEST,
     (f"release {R1} is not serving", SAME, None, (SERVICE,), ()), AGAIN),
    ("cleanup, keep 2: failures and the oldest good go, the rollback target stays",
     served(KEEP2, ((R1, OK), (R2, FAILED), (R3, FAILED), (R4, INTERRUPTED), (R5, OK))), info(KEEP2, SHA_B),
     DIGEST, (f"new bundle (current release {R5})", NEW, None, (SERVICE,), (R1, R2, R3, R4)), NEWER),
    ("cleanup, keep 5: nothing goes", served(history=((R1, OK), (R2, FAILED), (R3, OK))), info(V11, SHA_B),
     DIGEST, (f"new bundle (current release {R3})", NEW, None, (SERVICE,), ()), NEWER),
]  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "bundle", "digest", "expected", "changes"), [c[1:] for c in PLANS], ids=[c[0] for c in PLANS]
)
def test_plan_release(
    facts: ReleaseFacts,
    bundle: BundleInfo,
    digest: str,
    expected: tuple[object, ...],
    changes: dict[str, str],
) -> None:
    plan = plan_release(facts, bundle, {"api_key": digest})
    assert summary(plan) == expected
    assert {str(c.path): c.action for c in plan.changes} == changes
    assert plan_release(facts, bundle, {"api_key": digest}) == plan  # the same facts, the same plan


def test_a_plan_never_holds_a_secret_and_diffs_the_rest() -> None:
    plan = plan_release(served(), info(), {"api_key": ROTATED})
    (secret,) = [c for c in plan.changes if c.kind == "secret"]
    assert (secret.old_sha256, secret.new_sha256, secret.diff) == (DIGEST, ROTATED, "")
    edited = served(
        files=replace(
            files_of(SPEC, R1),
            files={
                **files_of(SPEC, R1).files,
                LAYOUT.nginx_site: FileState("0", 0o644, 0, 0, b"# by hand\n"),
            },
        )
    )
    site = next(c for c in plan_release(edited, info(), {}).changes if c.path == LAYOUT.nginx_site)
    assert (
        site.action == CHANGE
        and site.diff.startswith(f"--- a{LAYOUT.nginx_site}")
        and "-# by hand" in site.diff
    )


def test_an_edited_socket_unit_restarts_the_socket_and_an_unused_catch_all_goes() -> None:
    found = files_of(SPEC, R1)
    socket = replace(found.files[LAYOUT.socket_unit_path], sha256="0", content=b"# edited\n")
    old_port = "00-integrator-catch-all-https-8443.conf"
    found = replace(
        found,
        files={**found.files, LAYOUT.socket_unit_path: socket},
        catch_alls=(*found.catch_alls, old_port),
    )
    plan = plan_release(served(files=found), info(V11, SHA_B), {})
    assert plan.restart == (SOCKET, SERVICE) and plan.reload_nginx
    assert plan.activation is not None and plan.activation.remove == (LAYOUT.nginx_site.parent / old_port,)


def test_a_provided_certificate_that_is_missing_stops_the_plan() -> None:
    provided = replace(SPEC, tls=TlsSpec(mode="provided", cert="/etc/ssl/shop.pem", key="/etc/ssl/shop.key"))
    with pytest.raises(CheckFailed, match=r"\[tls\] mode = 'provided' but /etc/ssl/shop.pem does not exist"):
        plan_release(served(provided, tls=NO_TLS), info(provided, SHA_B), {})


def test_the_plan_is_what_deploy_plan_prints() -> None:
    plan = plan_release(served(), info(V11, SHA_B), {})
    result = plan_result(plan, LAYOUT)
    assert [(f["path"], f["action"], f["new_sha256"]) for f in result.data["files"]] == [
        (str(c.path), c.action, c.new_sha256) for c in plan.changes
    ]
    assert result.lines[0] == f"plan for shop 1.1 (new bundle (current release {R1})); nothing was changed"
    assert (
        result.lines[-1]
        == "  restart shop.service, nginx.service (reload); then health check, switch /opt/shop/current"
    )


# --- cleanup after a successful deploy: what the plan names goes -------------------------------------


def test_remove_releases_removes_what_the_plan_names_and_keeps_recent_history(host: FakeHost) -> None:
    ctx = ctx_for(host, replace(SPEC, keep_releases=1))
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
