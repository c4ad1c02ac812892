"""`release_plan.plan_release` as tables, pyinfra style: facts built by hand in, a plan out.

No host, no root, no files: a ReleaseFacts is plain data, so each case (first deploy, a new
version, nothing to do, a changed Python, a rotated secret, TLS near expiry or a new mode,
cleanup with failed releases, rollback) is one row, decided in milliseconds. That the facts are
read right and the plan is applied as it says is tests/test_host_plan.py, on a FakeHost.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from integrator.errors import CheckFailed, HostError
from integrator.host.bundleio import BundleInfo
from integrator.host.changes import CHANGE, CREATE
from integrator.host.facts import HostFacts
from integrator.host.release_facts import FileFacts, FileState, ReleaseFacts, secret_dirs, tree_dirs
from integrator.host.release_plan import ReleasePlan, plan_release, plan_result
from integrator.host.releases import FAILED, INTERRUPTED, OK, ROLLED_BACK, ReleaseRecord, rollback_target
from integrator.host.tls import CertFacts, TlsFacts, wanted_names
from integrator.layout import Layout
from integrator.render import render_all
from integrator.spec import ServiceSpec

from .host_fakes import SHA_A, SHA_B, SPEC
from .spec_edit import edit

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


V11 = edit(SPEC, service={"version": "1.1"})
LOCAL_CA = edit(SPEC, tls={"mode": "local-ca"})
SERVICE, SOCKET = "shop.service", "shop.socket"
FIRST = [LAYOUT.root, LAYOUT.releases, LAYOUT.state_dir, LAYOUT.acme_webroot, LAYOUT.tls_cert, LAYOUT.tls_key,
         LAYOUT.etc_dir, LAYOUT.credentials_dir, SECRET]  # fmt: skip
FIRST_FILES = {str(p): CREATE for p in FIRST}
FIRST_FILES.update({str(f.path): CREATE for f in render_all(SPEC, LAYOUT, NEW)})
GUNICORN_NEW, UNIT = str(LAYOUT.gunicorn_conf(NEW)), str(LAYOUT.service_unit_path)
NEWER = {UNIT: CHANGE, GUNICORN_NEW: CREATE}  # a new release of another bundle
KEEP2 = edit(SPEC, deploy={"keep_releases": 2})
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
    provided = edit(SPEC, tls={"mode": "provided", "cert": "/etc/ssl/shop.pem", "key": "/etc/ssl/shop.key"})
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


# --- rollback: where it goes, from the records alone -----------------------------------------------

ROLLBACKS = [
    # (case, releases (id, outcome), current, --to, on disk (None: all), target or the error)
    ("the previous good one", [(R1, OK), (R2, OK)], R2, None, None, R1),
    ("past failed and interrupted ones", [(R1, OK), (R2, FAILED), (R3, INTERRUPTED), (R4, OK)], R4, None,
     None, R1),
    ("a rolled-back release is good", [(R1, ROLLED_BACK), (R2, OK)], R2, None, None, R1),
    ("never a newer one", [(R1, OK), (R2, OK), (R3, OK)], R2, None, None, R1),
    ("--to any recorded one, even failed", [(R1, OK), (R2, FAILED), (R3, OK)], R3, R2, None, R2),
    ("--to the current one", [(R1, OK), (R2, OK)], R2, R2, None, R2),
    ("none earlier", [(R1, OK)], R1, None, None, "shop has no earlier good release"),
    ("--to an unknown id", [(R1, OK)], R1, R5, None, f"no release '{R5}' of shop"),
    ("removed by cleanup", [(R1, OK), (R2, OK)], R2, None, [R2],
     f"release {R1} of shop was removed from the host"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "current", "to", "on_disk", "expected"),
    [c[1:] for c in ROLLBACKS],
    ids=[c[0] for c in ROLLBACKS],
)
def test_rollback_target(
    history: list[tuple[str, str]], current: str, to: str | None, on_disk: list[str] | None, expected: str
) -> None:
    records = [ReleaseRecord(r, "", "", SHA_A, "1.0", "3.11.2", o) for r, o in history]
    disk = on_disk if on_disk is not None else [r for r, _ in history]
    if expected.startswith(("2027", "2026")):
        assert rollback_target("shop", records, current, to, disk) == expected
    else:
        with pytest.raises(HostError) as err:
            rollback_target("shop", records, current, to, disk)
        assert err.value.message == expected
