"""The deploy verb on the host itself: verify → check → lock → facts → plan → apply.

Everything here runs on the target (inside `python3 BUNDLE.pyz deploy`, or in-process for
`--local`); remote targets only ship the bundle and call this. The host is read once into facts
(release_facts.py), the decisions are one pure function of them (release_plan.py), and only the
executor (apply.py) changes the host. `--plan` stops after the plan and prints it. A failure
leaves the previous release serving, or after a failed first deploy removes everything it
wrote. So does an interruption: SIGINT, SIGTERM and SIGHUP raise inside the deploy
(interrupt.py), any exception runs the restore, and what a deploy killed outright left is
repaired by the next (repair.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..errors import EnvironmentProblem
from ..layout import Layout
from ..result import Result
from . import bundleio, ownership
from .activate import HostContext
from .apply import apply_release
from .config import with_host_config
from .facts import probe_host, systemd_booted
from .interrupt import interruptible
from .nginxconf import check_site_fits
from .progress import step as announce
from .release_facts import probe_release, supplied_digests
from .release_plan import ReleasePlan, plan_release, plan_result
from .releases import DeployLock
from .repair import repair_interrupted
from .secrets import check_secrets, require_credentials
from .system import System, require_root


def deploy_local(
    system: System, bundle: Path, plan_only: bool, secrets: Mapping[str, Path], release_id: str | None = None
) -> Result:
    """`integrator deploy` on this machine: the one code path every target ends up in;
    `release_id` is a fleet's (`--release-id`: one id on every host of a run)."""
    announce("verify", bundle.name)
    info = bundleio.open_bundle(bundle)
    announce("facts")
    facts = probe_host(system)
    ctx = HostContext(system, facts, info.spec, Layout.for_spec(info.spec, facts.distro))
    ownership.require_ours(system, ctx.layout)  # someone else's user or /opt/NAME: refused here
    check_secrets(system, info.spec, ctx.layout, secrets)
    require_credentials(info.spec, facts.systemd_version)
    check_site_fits(system, info.spec, ctx.layout)
    if plan_only:  # nothing on the host changes; root is not required to look
        shown = plan_result(decide(ctx, info, secrets, release_id), ctx.layout)
        return with_host_config(shown, system, ctx.layout)
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
        plan = decide(ctx, info, secrets, release_id)
        if plan.reason is None:
            result = plan_result(plan, ctx.layout)
        else:
            ownership.reserve(system, ctx.layout)
            try:
                result = apply_release(ctx, info, plan, secrets)
            finally:
                ownership.claim(system, ctx.layout)
    result.lines[:0] = repaired
    if repaired:
        result.data["repaired"] = repaired
    return result


def decide(
    ctx: HostContext, info: bundleio.BundleInfo, secrets: Mapping[str, Path], release_id: str | None = None
) -> ReleasePlan:
    """Facts in, plan out: the host is read here and nowhere else before the executor runs."""
    facts = probe_release(ctx, info.sha256, secrets)
    return plan_release(facts, info, supplied_digests(secrets), release_id)
