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


def files_of(spec: ServiceSpec, rid: str, slot: str = "a") -> FileFacts:
    """The files of release `rid` of `spec` as a deploy wrote them into `slot`, with the secret."""
    rendered = render_all(spec, LAYOUT, rid, nginx_version=HOST.nginx_version, slot=slot)
    files = {f.path: state(f.content.encode(), f.mode) for f in rendered}
    files[SECRET] = FileState(DIGEST, 0o600, 0, 0)
    dirs = frozenset(p for p, _ in (*tree_dirs(LAYOUT), *secret_dirs(LAYOUT)))
    site = {LAYOUT.nginx_site.name: next(f.content for f in rendered if f.path == LAYOUT.nginx_site)}
    catch_alls = tuple(f.path.name for f in rendered if "catch-all" in f.path.name)
    return FileFacts(files, dirs, IDS, site, catch_alls, str(LAYOUT.slot(slot).socket_path))


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
A, B = LAYOUT.slot("a"), LAYOUT.slot("b")
START_A, START_B = ("shop-a.socket", "shop-a.service"), ("shop-b.socket", "shop-b.service")
FIRST = [LAYOUT.root, LAYOUT.releases, LAYOUT.state_dir, LAYOUT.acme_webroot, LAYOUT.tls_cert, LAYOUT.tls_key,
         LAYOUT.etc_dir, LAYOUT.credentials_dir, SECRET]  # fmt: skip
FIRST_FILES = {str(p): CREATE for p in FIRST}
FIRST_FILES.update({str(f.path): CREATE for f in render_all(SPEC, LAYOUT, NEW)})
FIRST_FILES[str(LAYOUT.upstream_link)] = CREATE
GUNICORN_NEW, SITE = str(LAYOUT.gunicorn_conf(NEW)), str(LAYOUT.nginx_site)
# Slot a serves: a new release starts in b (its units created) and the serving link is switched
# to b; the site stays as it is (nginx is not reloaded).
INTO_B = {
    str(B.service_unit_path): CREATE,
    str(B.socket_unit_path): CREATE,
    str(LAYOUT.upstream_link): CHANGE,
}
NEWER = {**INTO_B, GUNICORN_NEW: CREATE}  # a new release of another bundle
KEEP2 = edit(SPEC, deploy={"keep_releases": 2})
SAME = "20270115T080000Z-aaaaaaaa"  # the same bundle deployed again at NOW
AGAIN = {**INTO_B, str(LAYOUT.gunicorn_conf(SAME)): CREATE}  # a new release of the same bundle
PLANS: list[tuple[str, ReleaseFacts, BundleInfo, str, tuple[object, ...], dict[str, str]]] = [
    # (case, facts, bundle, the supplied secret's digest, (reason, release, user, restart, cleanup), changes)
    ("first deploy", EMPTY, info(SPEC, SHA_B), DIGEST,
     ("first deploy", NEW, "shop", START_A, ()), FIRST_FILES),
    ("no-op: same bundle, healthy", served(), info(), DIGEST, (None, R1, None, (), ()), {}),
    ("a new version", served(), info(V11, SHA_B), DIGEST,
     (f"new bundle (current release {R1})", NEW, None, START_B, ()), NEWER),
    ("the host's Python changed", served(host=replace(HOST, python_version=(3, 12, 1))), info(), DIGEST,
     (f"rebuilding the venv: {LAYOUT.venv(R1)} was built for Python 3.11.2, the host now has 3.12",
      SAME, None, START_B, ()), AGAIN),
    ("the secret changed", served(), info(), ROTATED,
     (f"configuration changed: {SECRET}", SAME, None, START_B, ()), {str(SECRET): CHANGE, **AGAIN}),
    ("the certificate expires in 10 days", served(tls=cert(SPEC, days_left=10)), info(), DIGEST,
     (f"configuration changed: {LAYOUT.tls_cert}, {LAYOUT.tls_key}", SAME, None, START_B, ()),
     {str(LAYOUT.tls_cert): CHANGE, str(LAYOUT.tls_key): CHANGE, **AGAIN}),
    ("TLS mode self-signed -> local-ca", served(), info(LOCAL_CA, SHA_B), DIGEST,
     (f"new bundle (current release {R1})", NEW, None, START_B, ()),
     {str(LAYOUT.local_ca_cert): CREATE, str(LAYOUT.local_ca_key): CREATE, str(LAYOUT.tls_cert): CHANGE,
      str(LAYOUT.tls_key): CHANGE, SITE: CHANGE, **NEWER}),  # its comment on the certificate
    ("not serving", served(serving=False), info(), DIGEST,
     (f"release {R1} is not serving", SAME, None, START_B, ()), AGAIN),
    ("cleanup, keep 2: failures and the oldest good go, the rollback target stays",
     served(KEEP2, ((R1, OK), (R2, FAILED), (R3, FAILED), (R4, INTERRUPTED), (R5, OK))), info(KEEP2, SHA_B),
     DIGEST, (f"new bundle (current release {R5})", NEW, None, START_B, (R1, R2, R3, R4)), NEWER),
    ("cleanup, keep 5: nothing goes", served(history=((R1, OK), (R2, FAILED), (R3, OK))), info(V11, SHA_B),
     DIGEST, (f"new bundle (current release {R3})", NEW, None, START_B, ()), NEWER),
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


def test_an_edited_unit_of_the_serving_slot_is_a_change_and_an_unused_catch_all_goes() -> None:
    found = files_of(SPEC, R1)
    socket = replace(found.files[A.socket_unit_path], sha256="0", content=b"# edited\n")
    old_port = "00-integrator-catch-all-https-8443.conf"
    found = replace(
        found, files={**found.files, A.socket_unit_path: socket}, catch_alls=(*found.catch_alls, old_port)
    )
    plan = plan_release(served(files=found), info(), {})
    assert plan.reason == f"configuration changed: {A.socket_unit_path}"
    assert plan.restart == START_B and plan.reload_nginx  # the new slot starts afresh, socket and all
    assert plan.activation is not None and plan.activation.remove == (LAYOUT.nginx_site.parent / old_port,)


def legacy_files(rid: str) -> FileFacts:
    """A host deployed before slots: NAME.service + NAME.socket on /run/NAME/gunicorn.sock."""
    found = files_of(SPEC, rid)
    files = {p: f for p, f in found.files.items() if p not in A.unit_paths}
    site = found.files[LAYOUT.nginx_site]
    assert site.content is not None
    text = site.content.replace(str(LAYOUT.upstream_link).encode(), str(LAYOUT.legacy.socket_path).encode())
    files[LAYOUT.nginx_site] = state(text)
    for path in LAYOUT.legacy.unit_paths:
        files[path] = state(b"[Unit]\n")
    return replace(found, files=files, link_target=None)


SLOT_CASES = [
    # (case, files found, (kind, slot, retire, legacy files removed after the drain))
    ("nothing serves: slot a just starts", NOTHING, ("start", "a", None, ())),
    ("a serves: b starts, a is drained", files_of(SPEC, R1, "a"), ("drain-first", "b", "a", ())),
    ("b serves: a starts, b is drained", files_of(SPEC, R1, "b"), ("drain-first", "a", "b", ())),
    ("the legacy pair serves: a starts, the pair is drained, then removed", legacy_files(R1),
     ("drain-first", "a", "legacy", LAYOUT.legacy.unit_paths)),
]  # fmt: skip


@pytest.mark.parametrize(("found", "expected"), [c[1:] for c in SLOT_CASES], ids=[c[0] for c in SLOT_CASES])
def test_the_slot_and_the_activation_kind_follow_the_site_found(
    found: FileFacts, expected: tuple[object, ...]
) -> None:
    facts = EMPTY if found is NOTHING else served(files=found)
    plan = plan_release(facts, info(V11, SHA_B), {"api_key": DIGEST})
    act = plan.activation
    assert act is not None
    assert (act.kind, act.slot, act.retire, act.retire_files) == expected
    assert plan.restart == (f"shop-{act.slot}.socket", f"shop-{act.slot}.service")
    site = next(f for f in act.files if f.path == LAYOUT.nginx_site)
    assert "server unix:/opt/shop/serving.sock;" in site.content  # the same for every slot
    link = next(c for c in plan.changes if c.path == LAYOUT.upstream_link)
    assert link.kind == "link" and link.diff == f"-> /run/shop/gunicorn-{act.slot}.sock\n"
    removed = {c.path for c in plan.changes if c.action == "remove"}
    assert set(act.retire_files) <= removed


def test_a_host_of_the_legacy_pair_is_taken_over_even_by_the_same_bundle() -> None:
    plan = plan_release(served(files=legacy_files(R1)), info(), {"api_key": DIGEST})
    assert plan.reason == "configuration changed: shop.service (from before slots) moves to slot units"
    assert plan.activation is not None and plan.activation.retire == "legacy"


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
        == "  then drain shop-a.service, shop-a.socket: once nginx has no connection left to it, stop"
    )
    restart = "  restart shop-b.socket, shop-b.service"  # only the serving link changes for nginx
    assert result.lines[-2] == f"{restart}; then health check, switch /opt/shop/current"
    assert (result.data["activation"], result.data["slot"], result.data["drain"]) == ("drain-first", "b", "a")


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
