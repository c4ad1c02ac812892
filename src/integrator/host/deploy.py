"""The deploy flow on the host itself: verify → probe → lock → prepare a release → activate.

Everything here runs on the target (inside `python3 BUNDLE.pyz deploy`, or in-process for
`--local`); remote targets only ship the bundle and call this. A failure leaves the previous
release serving, or after a failed first deploy removes everything it wrote. So does an
interruption: SIGINT, SIGTERM and SIGHUP raise inside the deploy (interrupt.py), any exception
runs the restore, and what a deploy killed outright left is repaired by the next (repair.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..errors import EXIT_FAILED, EnvironmentProblem
from ..layout import Layout
from ..result import Result
from . import bundleio, ownership, releases, units, venvs
from .activate import (
    HostContext,
    Outcome,
    Previous,
    activate,
    check_serving,
    failure_of,
    previous_release,
    render_for,
)
from .bundleio import BundleInfo
from .facts import current_release, probe_host, systemd_booted, venv_usable
from .fs import Change, FileWriter, remove_tree
from .interrupt import hold_signals, interruptible
from .nginxconf import check_site_fits
from .progress import step as announce
from .releases import (
    DEPLOYING,
    FAILED,
    INTERRUPTED,
    OK,
    DeployLock,
    ReleaseRecord,
    wanted_release_id,
)
from .repair import repair_interrupted
from .secrets import check_secrets, install_secrets, require_credentials
from .selinux import apply_labels, remove_labels
from .system import System, require_root
from .tls import ensure_tls
from .users import ensure_user, remove_user


def deploy_local(
    system: System, bundle: Path, plan_only: bool, secrets: Mapping[str, Path], release_id: str | None = None
) -> Result:
    """`integrator deploy` on this machine: the one code path every target ends up in."""
    announce("verify", bundle.name)
    info = bundleio.open_bundle(bundle)
    announce("facts")
    facts = probe_host(system)
    ctx = HostContext(system, facts, info.spec, Layout.for_spec(info.spec, facts.distro))
    ownership.require_ours(system, ctx.layout)  # someone else's user or /opt/NAME: refused here
    check_secrets(system, info.spec, ctx.layout, secrets)
    require_credentials(info.spec, facts.systemd_version)
    check_site_fits(system, info.spec, ctx.layout)
    if plan_only:
        from .deploy_plan import plan_deploy

        return plan_deploy(ctx, info, secrets)
    require_root(system, "deploy")
    if not systemd_booted(system):
        raise EnvironmentProblem(
            "this machine does not run systemd as PID 1 (no /run/systemd/system): deploy to a systemd "
            "host (--ssh USER@HOST), or try it on a disposable one (integrator sandbox create; --host NAME)"
        )
    with interruptible(), DeployLock(system, ctx.layout) as lock:
        ctx = replace(ctx, lock=lock)
        repaired = repair_interrupted(system, ctx.layout, lock).lines
        ctx.progress("check")
        stale = why_redeploy(ctx, info, secrets)
        if stale is None:
            result = nothing_to_do(ctx, info)
        else:
            ownership.reserve(system, ctx.layout)
            try:
                result = _deploy(ctx, info, secrets, stale, release_id)
            finally:
                ownership.claim(system, ctx.layout)
    result.lines[:0] = repaired
    if repaired:
        result.data["repaired"] = repaired
    return result


def nothing_to_do(ctx: HostContext, info: BundleInfo) -> Result:
    rid = current_release(ctx.system, ctx.layout.current)
    result = Result(data={"service": ctx.spec.name, "release": rid, "outcome": "unchanged", "changed": False})
    return result.say(
        f"{ctx.spec.name} {ctx.spec.version}: nothing to do (bundle {info.sha256[:12]} is release {rid})"
    )


def why_redeploy(ctx: HostContext, info: BundleInfo, secrets: Mapping[str, Path]) -> str | None:
    """None when this bundle already serves healthy with identical config; else the reason."""
    system, layout = ctx.system, ctx.layout
    rid = current_release(system, layout.current)
    record = releases.find(releases.load_records(system, layout), rid)
    if rid is None or record is None:
        return "first deploy"
    if record.bundle_sha256 != info.sha256 or record.outcome != OK:
        return f"new bundle (current release {rid})"
    stale_venv = venv_usable(system, layout.venv(rid), ctx.facts)
    if stale_venv:
        return f"rebuilding the venv: {stale_venv}"
    probe = FileWriter(system, dry_run=True)
    pending = [c for c in config_changes(ctx, probe, rid, secrets) if c.changed]
    if pending:
        return f"configuration changed: {', '.join(str(c.path) for c in pending)}"
    if not units.is_active(system, layout.service_unit) or not check_serving(ctx, deadline_s=3).ok:
        return f"release {rid} is not serving"
    return None


def config_changes(
    ctx: HostContext, writer: FileWriter, rid: str, secrets: Mapping[str, Path]
) -> list[Change]:
    """TLS, secrets and rendered files, through `writer` (dry-run for a comparison)."""
    changes = ensure_tls(ctx.system, writer, ctx.spec, ctx.layout, ctx.facts.hostname)
    changes += install_secrets(writer, ctx.spec, ctx.layout, secrets)
    return changes + writer.put_rendered(render_for(ctx, rid))


def _deploy(
    ctx: HostContext, info: BundleInfo, secrets: Mapping[str, Path], why: str, wanted: str | None
) -> Result:
    started = time.monotonic()
    system, layout = ctx.system, ctx.layout
    previous_id = current_release(system, layout.current)
    previous = previous_release(system, layout, previous_id)
    rid = wanted_release_id(system, layout, info.sha256, wanted, previous_id)
    writer = FileWriter(system)
    created_user = False
    try:
        ctx.progress("user")
        created_user = ensure_user(system, layout)
        venv = _prepare_release(ctx, info, writer, rid, secrets)
        outcome = activate(ctx, writer, rid, previous)  # restores on any failure itself
    except BaseException as exc:  # before activation (or a bug in it): the serving release is untouched
        hold_signals()
        failure = failure_of(exc, ctx.step)
        writer.undo()
        reason = failure or Outcome(False, f"internal error: {exc!r}")
        reason.restored = None if previous is None else True
        result = _failed(ctx, rid, previous, created_user, reason)
        if failure is None:
            raise
        return result
    if not outcome.ok:
        return _failed(ctx, rid, previous, created_user, outcome)
    return _succeeded(ctx, rid, previous_id, outcome, why, time.monotonic() - started, venv)


def _prepare_release(
    ctx: HostContext, info: BundleInfo, writer: FileWriter, rid: str, secrets: Mapping[str, Path]
) -> venvs.VenvOutcome:
    """Directories, the unpacked release with its venv, TLS and secrets; recorded as deploying."""
    system, layout = ctx.system, ctx.layout
    for path, mode in ((layout.root, 0o755), (layout.releases, 0o755), (layout.state_dir, 0o700)):
        writer.ensure_dir(path, mode)
    _record(ctx, rid, info, DEPLOYING)
    ctx.progress("unpack")
    bundleio.unpack_release(system, info, layout, rid)
    ctx.progress("venv")
    venv = venvs.ensure_venv(system, info, layout, rid, ctx.facts)
    ctx.progress("tls")
    ensure_tls(system, writer, ctx.spec, layout, ctx.facts.hostname)
    writer.ensure_dir(layout.acme_webroot, 0o755)  # root's alone: ACME tokens (render/nginx_acme.py)
    ctx.progress("secrets")
    install_secrets(writer, ctx.spec, layout, secrets)
    ctx.progress("labels")
    apply_labels(system, ctx.spec, layout)
    return venv


def _record(ctx: HostContext, rid: str, info: BundleInfo, outcome: str, message: str = "") -> None:
    """Write the release record outside the undo journal: a failure must stay on record."""
    records = releases.load_records(ctx.system, ctx.layout)
    record = releases.find(records, rid)
    if record is None:
        record = ReleaseRecord(
            id=rid,
            deployed_at=releases.now_iso(),
            by=releases.deployed_by(),
            bundle_sha256=info.sha256,
            version=ctx.spec.version,
            python=".".join(map(str, ctx.facts.python_version)),
            outcome=outcome,
            message=message,
        )
        records = releases.upsert(records, record)
    records = releases.set_outcome(records, rid, outcome, message)
    releases.save_records(FileWriter(ctx.system), ctx.layout, records)


def _set_outcome(ctx: HostContext, rid: str, outcome: str, message: str = "") -> None:
    records = releases.set_outcome(releases.load_records(ctx.system, ctx.layout), rid, outcome, message)
    releases.save_records(FileWriter(ctx.system), ctx.layout, records)


def _succeeded(
    ctx: HostContext,
    rid: str,
    previous_id: str | None,
    outcome: Outcome,
    why: str,
    secs: float,
    venv: venvs.VenvOutcome,
) -> Result:
    held = hold_signals()  # already held since the health check passed: finish recording
    ctx.progress("record")
    _set_outcome(ctx, rid, OK)
    ctx.progress("cleanup")
    removed = cleanup_releases(ctx, rid)
    changed = [c for c in outcome.changes if c.changed]
    result = Result(
        data={
            "service": ctx.spec.name,
            "release": rid,
            "previous": previous_id,
            "outcome": OK,
            "changed": True,
            "files": [{"path": str(c.path), "action": c.action} for c in changed],
            "removed_releases": removed,
            "venv": {"name": venv.name, "reused": venv.reused, "seconds": round(venv.seconds, 2)},
            "elapsed_s": round(secs, 2),
        }
    )
    result.say(f"deployed {ctx.spec.name} {ctx.spec.version} as release {rid} in {secs:.1f} s ({why})")
    result.say(f"  {venv.line()}")
    for c in changed:
        result.say(f"  {c.action:7} {c.path}")
    result.say(
        f"serving: https://{ctx.spec.effective_server_names[0]}:{ctx.spec.http.https_port}/ "
        "(health check passed)"
    )
    if removed:
        result.say(f"removed old releases: {', '.join(removed)}")
    if held:
        result.warn(f"{', '.join(held)} arrived after the health check passed; the deploy was finished first")
    return result


def cleanup_releases(ctx: HostContext, current: str) -> list[str]:
    """Delete old releases by `releases.to_remove` (never current nor the rollback target), then
    the venvs no remaining release links to."""
    records = releases.load_records(ctx.system, ctx.layout)
    existing = releases.release_ids(ctx.system, ctx.layout)
    doomed = releases.to_remove(existing, records, current, ctx.spec.deploy.keep_releases)
    for rid in doomed:
        remove_tree(ctx.system, ctx.layout.release(rid))
    venvs.remove_unused(ctx.system, ctx.layout)
    remaining = [r for r in existing if r not in doomed]
    releases.save_records(FileWriter(ctx.system), ctx.layout, releases.prune_records(records, remaining))
    return doomed


def _failed(
    ctx: HostContext, rid: str, previous: Previous | None, created_user: bool, outcome: Outcome
) -> Result:
    """Report the reason and the failed start's journal; a first deploy leaves no trace."""
    system, layout = ctx.system, ctx.layout
    hold_signals()  # the cleanup below must finish, whatever arrives now
    if previous is None:
        remove_first_deploy(ctx, created_user)
        state = "first deploy: everything it wrote was removed"
    else:
        _set_outcome(ctx, rid, INTERRUPTED if outcome.interrupted else FAILED, outcome.reason)
        remove_tree(system, layout.venv(rid))  # keep the release for inspection, not its venv
        venvs.remove_unused(system, layout)  # the venv built for it, unless another release uses it
        serving = "still serving" if outcome.restored else "NOT serving (check `integrator status`)"
        state = f"release {previous.release_id} {serving}"
    result = Result(
        exit_code=128 + outcome.signum if outcome.interrupted else EXIT_FAILED,
        data={"service": ctx.spec.name, "release": rid, "reason": outcome.reason,
              "restored": outcome.restored, "outcome": INTERRUPTED if outcome.interrupted else FAILED,
              "journal": outcome.journal},
    )  # fmt: skip
    result.say(f"deploy of {ctx.spec.name} {ctx.spec.version} failed: {outcome.reason}")
    result.say(state)
    if outcome.journal:
        result.say(f"last lines of the {layout.service_unit} journal:")
        result.lines.extend(f"  | {line}" for line in outcome.journal)
    return result


def remove_first_deploy(ctx: HostContext, created_user: bool) -> None:
    """Undo a first deploy: units are already gone; the tree, state and user go too, but only
    what this deploy (or a killed one before it) created, i.e. what the ownership record still
    has reserved: app data or secrets kept by an earlier `uninstall` stay, with their record."""
    system, layout = ctx.system, ctx.layout
    owned = ownership.load(system, layout) or ownership.Owned(layout.name)
    units.stop_and_disable(system, layout)
    ownership.remove_reserved(system, layout, owned)
    if created_user or ownership.is_reserved(owned, ownership.USER):
        remove_user(system, layout, owned)
    remove_tree(system, layout.state_dir)
    remove_labels(system, layout)
    ownership.save_still_ours(system, layout, owned)
