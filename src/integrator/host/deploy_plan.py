"""`deploy --plan`: the deploy's own steps run against a dry-run writer, so the plan cannot
drift from what a deploy does. Nothing on the host changes; root is not required to look.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..result import Result
from .activate import HostContext, socket_changed
from .bundleio import BundleInfo
from .deploy import config_changes, nothing_to_do, why_redeploy
from .facts import current_release
from .fs import FileWriter
from .releases import unique_release_id


def plan_deploy(ctx: HostContext, info: BundleInfo, secrets: Mapping[str, Path]) -> Result:
    why = why_redeploy(ctx, info, secrets)
    if why is None:
        return nothing_to_do(ctx, info)
    layout = ctx.layout
    rid = unique_release_id(ctx.system, layout, info.sha256)
    changes = [
        c for c in config_changes(ctx, FileWriter(ctx.system, dry_run=True), rid, secrets) if c.changed
    ]
    restarts = ([layout.socket_unit] if socket_changed(layout, changes) else []) + [
        layout.service_unit,
        "nginx.service (reload)",
    ]
    new_user = ctx.system.user(layout.user) is None
    result = Result(
        data={
            "service": ctx.spec.name,
            "plan": True,
            "changed": True,
            "reason": why,
            "release": rid,
            "previous": current_release(ctx.system, layout.current),
            "create_user": layout.user if new_user else None,
            "files": [{"path": str(c.path), "action": c.action, "diff": c.diff} for c in changes],
            "restart": restarts,
        }
    )
    result.say(f"plan for {ctx.spec.name} {ctx.spec.version} ({why}); nothing was changed")
    if new_user:
        result.say(f"  create  system user {layout.user} (no shell, no home)")
    py = ctx.facts.python_short
    result.say(f"  create  {layout.release(rid)} with a venv for Python {py} (offline, from the bundle)")
    for c in changes:
        result.say(f"  {c.action:7} {c.path}")
        result.lines.extend("    " + line for line in c.diff.splitlines())
    result.say(f"  restart {', '.join(restarts)}; then health check, switch {layout.current}")
    return result
