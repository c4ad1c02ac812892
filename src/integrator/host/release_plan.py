"""The deploy's decisions, pure: facts in (release_facts.py), a ReleasePlan out, applied by
apply.py and printed by `deploy --plan` (`plan_result`, the one place a plan is rendered).

Nothing here reads or changes a host: the same facts give the same plan, so every case is a
table row (tests/test_host_plan.py). Rollback takes its activation (`plan_activation`) and its
venv check (`facts.venv_stale`) from here too.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ..layout import Layout
from ..result import Result
from ..slots import LEGACY
from ..spec import ServiceSpec
from . import releases
from .activation_plan import (  # re-exported: the plan's parts are named from here too
    DIR,
    FILE,
    SECRET,
    TLS,
    Activation,
    FileChange,
    file_change,
    plan_activation,
    rendered_changes,
    serving_slot,
)
from .bundleio import BundleInfo
from .changes import CHANGE, CREATE, REMOVE, UNCHANGED
from .facts import venv_stale
from .processes import ProcessPlan, plan_processes, process_plan_lines
from .release_facts import FileFacts, ReleaseFacts, secret_dirs, tree_dirs
from .releases import OK, ReleaseRecord
from .tls import TlsPlan, plan_tls

__all__ = ["DIR", "FILE", "SECRET", "TLS", "Activation", "FileChange", "ReleasePlan", "file_change",
           "plan_activation", "plan_release", "plan_result"]  # fmt: skip


@dataclass(frozen=True)
class ReleasePlan:
    """A deploy decided: why (None: nothing to do), as which release, and every change it makes."""

    service: str
    version: str
    bundle_sha256: str
    reason: str | None
    release_id: str | None  # the new release; with nothing to do, the current one
    replaces: str | None  # a fleet's id left by an earlier run (not current): removed first
    previous: str | None
    create_user: str | None  # the system user (and its group) to create, if missing
    python: str  # the host's Python the release's venv is built for
    dirs: tuple[tuple[PurePosixPath, int], ...]  # directories made if missing, with their modes
    tls: TlsPlan
    secrets: tuple[FileChange, ...]  # their directories and the supplied files that differ
    activation: Activation | None
    restart: tuple[str, ...]  # units (re)started, in order
    reload_nginx: bool  # a file nginx reads changes (a switch of slots alone is the serving link)
    cleanup: tuple[str, ...]  # releases removed once this one serves (keep_releases)
    release_command: tuple[str, ...] = ()  # [deploy] release: run with the new venv before the switch
    processes: ProcessPlan = ProcessPlan()  # noqa: RUF009 (frozen) workers and timers: (re)started, stopped after the switch

    @property
    def changes(self) -> tuple[FileChange, ...]:
        """Every path this plan touches, in the order the deploy touches them."""
        made = tuple(FileChange(p, CREATE, DIR) for p, _ in self.dirs)
        tls = tuple(FileChange(c.path, c.action, TLS, diff=c.diff) for c in self.tls.changes)
        active = self.activation.changes if self.activation else ()
        stale = tuple(FileChange(p, REMOVE, FILE, sha) for p, sha in self.processes.remove)
        return made + tls + self.secrets + active + stale


def plan_release(
    facts: ReleaseFacts, bundle: BundleInfo, secrets: Mapping[str, str], release_id: str | None = None
) -> ReleasePlan:
    """Pure: deploy `bundle` with the supplied secrets (name -> sha256 of the file, from
    `release_facts.supplied_digests`) on a host with these facts, as `release_id` if given (a
    fleet's), else as a new id."""
    spec, sha256 = bundle.spec, bundle.sha256
    layout = Layout.for_spec(spec, facts.host.distro)
    tls = plan_tls(spec, layout, facts.tls, facts.host.hostname, facts.now)
    secret_changes = plan_secrets(spec, layout, facts.files, secrets)
    reason = why_deploy(facts, spec, layout, sha256, tls, secret_changes)
    base = ReleasePlan(spec.name, spec.version, sha256, reason, facts.current, None, facts.current, None,
                       facts.host.python_short, (), tls, (), None, (), False, ())  # fmt: skip
    if reason is None:
        return base
    rid, replaces = new_release(facts, sha256, release_id)
    activation = plan_activation(spec, layout, rid, facts.host.nginx_version, facts.files)
    new = ReleaseRecord(rid, "", "", sha256, spec.version, "", OK)
    dirs = [r for r in facts.release_dirs if r != replaces]
    records = [r for r in facts.records if r.id != replaces]
    doomed = releases.to_remove([*dirs, rid], [*records, new], rid, spec.deploy.keep_releases)
    plan = replace(
        base, release_id=rid, replaces=replaces, create_user=None if facts.user_exists else layout.user,
        dirs=missing_dirs(tree_dirs(layout), facts.files), secrets=secret_changes, activation=activation,
        restart=layout.slot(activation.slot).units[::-1], cleanup=tuple(doomed),
        release_command=spec.deploy.release, processes=plan_processes(spec, layout, facts.files),
    )  # fmt: skip
    # the same rule as activate.nginx_must_reload: only a file nginx reads needs a reload
    return replace(plan, reload_nginx=any(layout.nginx_reads(c.path) for c in plan.changes))


def why_deploy(
    facts: ReleaseFacts,
    spec: ServiceSpec,
    layout: Layout,
    sha256: str,
    tls: TlsPlan,
    secret_changes: tuple[FileChange, ...],
) -> str | None:
    """None when this bundle already serves healthy with identical config; else the reason."""
    rid = facts.current
    record = releases.find(facts.records, rid)
    if rid is None or record is None:
        return "first deploy"
    if record.bundle_sha256 != sha256 or record.outcome != OK:
        return f"new bundle (current release {rid})"
    stale = venv_stale(layout.venv(rid), facts.venv_python, facts.venv_runs, facts.host)
    if stale:
        return f"rebuilding the venv: {stale}"
    serving = serving_slot(layout, facts.files)
    if serving is None:
        return f"configuration changed: {layout.nginx_site}"  # it routes to neither slot
    if serving.name == LEGACY:
        return f"configuration changed: {serving.service_unit} (from before slots) moves to slot units"
    rendered = rendered_changes(spec, layout, rid, facts.host.nginx_version, facts.files, serving.name)
    written = [c.path for c in rendered if c.action != REMOVE]
    pending = [*(c.path for c in tls.changes), *(c.path for c in secret_changes), *written]
    if pending:
        return f"configuration changed: {', '.join(map(str, pending))}"
    if not facts.serving:
        return f"release {rid} is not serving"
    return None


def plan_secrets(
    spec: ServiceSpec, layout: Layout, found: FileFacts, supplied: Mapping[str, str]
) -> tuple[FileChange, ...]:
    """The credentials directories and each supplied secret that differs (content never shown).
    `supplied` holds digests: the plan never sees a secret."""
    if not spec.secrets.files:
        return ()
    changes = [FileChange(d, CREATE, DIR) for d, _ in missing_dirs(secret_dirs(layout), found)]
    for name in spec.secrets.files:
        if name in supplied:
            path = layout.credentials_dir / name
            state = found.files.get(path)
            root = found.ids.get(("root", "root"), (-1, -1))
            if (
                state is None
                or state.sha256 != supplied[name]
                or (state.mode, state.uid, state.gid) != (0o600, *root)
            ):
                action = CREATE if state is None else CHANGE
                changes.append(
                    FileChange(path, action, SECRET, state.sha256 if state else None, supplied[name])
                )
    return tuple(changes)


def missing_dirs(
    dirs: tuple[tuple[PurePosixPath, int], ...], found: FileFacts
) -> tuple[tuple[PurePosixPath, int], ...]:
    return tuple((p, mode) for p, mode in dirs if p not in found.dirs)


def new_release(facts: ReleaseFacts, sha256: str, wanted: str | None) -> tuple[str, str | None]:
    """A fleet's id, else a new unique one; and the leftover of that id (a release directory or
    record of an earlier run, not current) that the deploy replaces."""
    if wanted is None or wanted == facts.current:
        return unique_release_id(facts.release_names, sha256, facts.now), None
    left = wanted in facts.release_names or releases.find(facts.records, wanted) is not None
    return wanted, wanted if left else None


def unique_release_id(taken: frozenset[str], sha256: str, now: float) -> str:
    """`releases.new_release_id`, with `.2`, `.3`, ... when that name is taken already."""
    rid = releases.new_release_id(sha256, now)
    candidate, n = rid, 1
    while candidate in taken:
        n += 1
        candidate = f"{rid}.{n}"
    return candidate


# --- the one place a plan is printed -----------------------------------------------------------


def plan_result(plan: ReleasePlan, layout: Layout) -> Result:
    """`deploy --plan` (and a deploy with nothing to do): the plan for a person and as JSON."""
    if plan.reason is None:
        data = {"service": plan.service, "release": plan.release_id, "outcome": UNCHANGED, "changed": False}
        same = f"bundle {plan.bundle_sha256[:12]} is release {plan.release_id}"
        return Result(data=data).say(f"{plan.service} {plan.version}: nothing to do ({same})")
    changes = plan.changes
    restarts = [*plan.restart, *(["nginx.service (reload)"] if plan.reload_nginx else [])]
    result = Result(
        data={
            "service": plan.service,
            "plan": True,
            "changed": True,
            "reason": plan.reason,
            "release": plan.release_id,
            "previous": plan.previous,
            "create_user": plan.create_user,
            "files": [{"path": str(c.path), "action": c.action, "kind": c.kind, "old_sha256": c.old_sha256,
                       "new_sha256": c.new_sha256, "diff": c.diff} for c in changes],
            "restart": restarts,
            "activation": plan.activation.kind if plan.activation else None,
            "slot": plan.activation.slot if plan.activation else None,
            "drain": plan.activation.retire if plan.activation else None,
            "cleanup": list(plan.cleanup),
            "release_command": list(plan.release_command),
            "processes": {"restart": list(plan.processes.restart), "stop": list(plan.processes.stop)},
        }
    )  # fmt: skip
    result.say(f"plan for {plan.service} {plan.version} ({plan.reason}); nothing was changed")
    if plan.create_user:
        result.say(f"  create  system user {plan.create_user} (no shell, no home)")
    assert plan.release_id is not None
    release = layout.release(plan.release_id)
    result.say(f"  create  {release} with a venv for Python {plan.python} (offline, from the bundle)")
    for c in changes:
        result.say(f"  {c.action:7} {c.path}")
        result.lines.extend("    " + line for line in c.diff.splitlines())
    if plan.release_command:
        hook = shlex.join(plan.release_command)
        result.say(f"  run     `{hook}` with the new venv, as {layout.user} (before the switch)")
    result.say(f"  restart {', '.join(restarts)}; then health check, switch {layout.current}")
    if plan.activation is not None and plan.activation.retire is not None:
        old = layout.legacy if plan.activation.retire == LEGACY else layout.slot(plan.activation.retire)
        result.say(f"  then drain {', '.join(old.units)}: once nginx has no connection left to it, stop")
    if not plan.processes.empty:
        result.lines += process_plan_lines(plan.processes)
    if plan.cleanup:
        result.say(f"  then remove old releases: {', '.join(plan.cleanup)}")
    return result
