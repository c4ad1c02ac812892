"""The executor: a ReleasePlan (release_plan.py) done on the host, step by step, and nothing
the plan does not say. The only deploy code that changes a host.

Steps, in order (each names the lock step `status` shows): user, directories and the record
`deploying`, unpack, venv, tls, secrets, labels, the release command ([deploy] release,
hooks.py), then the activation (activate.py: write, nginx-test, start, nginx-reload, health,
switch), record, cleanup. A new step (a drain-first activation) is one more function here and
one more plan field.
Every file goes through one FileWriter: on a failure before the switch, all of them come back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import EXIT_FAILED, HostError
from ..result import Result
from . import bundleio, ownership, releases, units, venvs
from .activate import HostContext, Outcome, Previous, activate, failure_of, previous_release
from .bundleio import BundleInfo
from .fs import FileWriter, remove_tree
from .hooks import run_release_hook
from .interrupt import hold_signals
from .processes import check_calendars, switch_processes
from .release_facts import probe_files, secret_dirs
from .release_plan import SECRET, Activation, ReleasePlan, plan_activation
from .releases import DEPLOYING, FAILED, INTERRUPTED, OK, ReleaseRecord
from .selinux import apply_labels, remove_labels
from .tls import apply_tls
from .users import ensure_user, remove_user


def apply_release(
    ctx: HostContext, info: BundleInfo, plan: ReleasePlan, secrets: Mapping[str, Path]
) -> Result:
    """Do `plan` (a deploy, not a no-op); a failure restores what served before (or, on a first
    deploy, removes what it made) and is a Result with exit code 1, not an exception."""
    assert plan.reason is not None and plan.release_id is not None and plan.activation is not None
    check_calendars(ctx.system, ctx.spec)  # [timers] as this host's systemd reads them, before any change
    started = time.monotonic()
    rid = plan.release_id
    if plan.replaces is not None:  # a fleet's id, left by an earlier run of it
        remove_tree(ctx.system, ctx.layout.release(plan.replaces))
        kept = [r for r in releases.load_records(ctx.system, ctx.layout) if r.id != plan.replaces]
        releases.save_records(FileWriter(ctx.system), ctx.layout, kept)
    previous = previous_release(ctx.system, ctx.layout, plan.previous)
    writer = FileWriter(ctx.system)
    created_user = False
    try:
        ctx.progress("user")
        created_user = plan.create_user is not None and ensure_user(ctx.system, ctx.layout)
        venv = prepare_release(ctx, info, writer, plan, secrets)
        if plan.release_command:
            ctx.progress("release")
            run_release_hook(ctx.system, ctx.spec, ctx.layout, rid, plan.release_command)
        outcome = activate(ctx, writer, plan.activation, previous)  # restores on any failure itself
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
    return switch_processes(
        ctx, plan.processes, _succeeded(ctx, plan, outcome, time.monotonic() - started, venv)
    )


def activation_for(ctx: HostContext, release_id: str) -> Activation:
    """Facts → plan for making `release_id` serve alone (rollback, repair): its files against
    the host's, the catch-alls left unused, whether the socket restarts."""
    found = probe_files(ctx, release_id)
    return plan_activation(ctx.spec, ctx.layout, release_id, ctx.facts.nginx_version, found)


def prepare_release(
    ctx: HostContext, info: BundleInfo, writer: FileWriter, plan: ReleasePlan, secrets: Mapping[str, Path]
) -> venvs.VenvOutcome:
    """Directories, the unpacked release with its venv, TLS and secrets; recorded as deploying."""
    system, layout, rid = ctx.system, ctx.layout, str(plan.release_id)
    for path, mode in plan.dirs:
        writer.ensure_dir(path, mode)
    _record(ctx, rid, info, DEPLOYING)
    ctx.progress("unpack")
    bundleio.unpack_release(system, info, layout, rid)
    ctx.progress("venv")
    venv = build_venv(ctx, info, rid)
    ctx.progress("tls")
    apply_tls(system, writer, ctx.spec, layout, ctx.facts.hostname, plan.tls)
    ctx.progress("secrets")
    install_secrets(writer, plan, secrets, ctx)
    ctx.progress("labels")
    apply_labels(system, ctx.spec, layout)
    return venv


def build_venv(ctx: HostContext, info: BundleInfo, rid: str) -> venvs.VenvOutcome:
    """The release's venv, linked to the one of its lock (reused, or built offline from the
    bundle's wheels): the one place a deploy or rollback makes one."""
    return venvs.ensure_venv(ctx.system, info, ctx.layout, rid, ctx.facts)


def install_secrets(
    writer: FileWriter, plan: ReleasePlan, secrets: Mapping[str, Path], ctx: HostContext
) -> None:
    """The plan's secret directories and files (root-only, content never shown); a file that
    changed since the plan read it is refused rather than installed unseen."""
    import hashlib

    modes = dict(secret_dirs(ctx.layout))
    for change in plan.secrets:
        if change.kind != SECRET:
            writer.ensure_dir(change.path, modes[change.path])
            continue
        data = secrets[change.path.name].read_bytes()
        if hashlib.sha256(data).hexdigest() != change.new_sha256:
            raise HostError(f"--secret {change.path.name}: the file changed during the deploy; deploy again")
        writer.put(change.path, data, 0o600, secret=True)


def _record(ctx: HostContext, rid: str, info: BundleInfo, outcome: str, message: str = "") -> None:
    """Write the release record outside the undo journal: a failure must stay on record."""
    records = releases.load_records(ctx.system, ctx.layout)
    if releases.find(records, rid) is None:
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
    set_outcome(ctx, rid, outcome, message, records)


def set_outcome(
    ctx: HostContext, rid: str, outcome: str, message: str = "", records: list[ReleaseRecord] | None = None
) -> None:
    found = releases.load_records(ctx.system, ctx.layout) if records is None else records
    releases.save_records(
        FileWriter(ctx.system), ctx.layout, releases.set_outcome(found, rid, outcome, message)
    )


def _succeeded(
    ctx: HostContext, plan: ReleasePlan, outcome: Outcome, secs: float, venv: venvs.VenvOutcome
) -> Result:
    held = hold_signals()  # already held since the health check passed: finish recording
    rid = str(plan.release_id)
    ctx.progress("record")
    set_outcome(ctx, rid, OK)
    ctx.progress("cleanup")
    removed = remove_releases(ctx, plan.cleanup)
    changed = [c for c in outcome.changes if c.changed]
    result = Result(
        data={
            "service": ctx.spec.name,
            "release": rid,
            "previous": plan.previous,
            "outcome": OK,
            "changed": True,
            "files": [{"path": str(c.path), "action": c.action} for c in changed],
            "removed_releases": removed,
            "venv": {"name": venv.name, "reused": venv.reused, "seconds": round(venv.seconds, 2)},
            "elapsed_s": round(secs, 2),
        }
    )
    result.say(
        f"deployed {ctx.spec.name} {ctx.spec.version} as release {rid} in {secs:.1f} s ({plan.reason})"
    )
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


def remove_releases(ctx: HostContext, doomed: tuple[str, ...]) -> list[str]:
    """Delete the releases the plan names (`releases.to_remove`: never current nor the rollback
    target), then the venvs no remaining release links to; their records stay as recent history
    (`releases.prune_records`)."""
    for rid in doomed:
        remove_tree(ctx.system, ctx.layout.release(rid))
    venvs.remove_unused(ctx.system, ctx.layout)
    remaining = releases.release_ids(ctx.system, ctx.layout)
    records = releases.prune_records(releases.load_records(ctx.system, ctx.layout), remaining)
    releases.save_records(FileWriter(ctx.system), ctx.layout, records)
    return list(doomed)


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
        set_outcome(ctx, rid, INTERRUPTED if outcome.interrupted else FAILED, outcome.reason)
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
        result.say("last lines of the new release's journal (its slot's service):")
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
