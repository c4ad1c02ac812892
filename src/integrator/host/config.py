"""`config`, `scale` and `secret` on the host: facts -> plan (config_plan.py, pure) -> apply.

A change is written through one FileWriter (the recorded configuration, the drop-ins, the
credential) and made live by the same activation deploy and rollback use (activate.activate
with apply.activation_for the serving release): restarted, health-checked through nginx, and
on a failure every file put back exactly and the service restarted on them. Each attempt is
recorded (who, when, what changed, the outcome) without the values of secret-looking keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import replace

from ..errors import EXIT_FAILED, IntegratorError
from ..layout import Layout
from ..render.dropin import dropin_paths
from ..result import Result
from ..spec import check_service_name
from . import releases
from .activate import HostContext, activate, previous_release
from .apply import activation_for
from .config_facts import config_record, history_record, load_config, load_history, probe_config
from .config_plan import ConfigFacts, ConfigPlan, ConfigRequest, effective, plan_config, who
from .facts import probe_host
from .fs import FileWriter
from .interrupt import interruptible
from .processes import plan_processes, switch_processes
from .release_facts import probe_files, secret_dirs
from .releases import DeployLock
from .repair import repair_interrupted
from .status import require_installed
from .system import System, require_root

HISTORY_KEPT = 50


# --- show ---------------------------------------------------------------------------------------


def show_config(system: System, name: str) -> Result:
    """The release's [env] (the base), this host's overrides, and what the service gets."""
    facts = probe_config(system, name)
    spec, config = facts.spec, facts.config
    rows = effective(spec, config)
    own = set(spec.secrets.files)
    data = {
        "service": name, "release": facts.release_id, "env": rows,
        "workers": {"release": spec.server.workers, "host": config.workers},
        "threads": {"release": spec.server.threads, "host": config.threads},
        "secrets": [{"name": s, "from": "release"} for s in spec.secrets.files]
                   + [{"name": s, "from": "host"} for s in config.secrets if s not in own],
        "changed_by": config.by, "changed_at": config.at,
        "dropins": [str(p) for p in dropin_paths(facts.layout)],
        "history": load_history(system, facts.layout)[-5:],
    }  # fmt: skip
    result = Result(data=data)
    last = f"last changed {config.at} by {config.by}" if config.at else "no host overrides"
    result.say(f"{name}: release {facts.release_id}; {last}")
    for row in rows:
        base = "" if row["base"] is None else f"; [env]: {row['base']}"
        result.say(f"  {row['key']}={row['value']}  (from {row['from']}{base})")
    for key in ("workers", "threads"):
        size = data[key]
        assert isinstance(size, dict)
        where = "host" if size["host"] else "release"
        result.say(f"  {key} {size['host'] or size['release']} (from {where}; release: {size['release']})")
    secrets = data["secrets"]
    assert isinstance(secrets, list)
    if secrets:
        result.say("  secrets: " + ", ".join(f"{s['name']} (from {s['from']})" for s in secrets))
    if not config.empty:
        result.say(f"  written to {', '.join(map(str, dropin_paths(facts.layout)))}")
    return result


def summary(system: System, layout: Layout) -> str | None:
    """One line for `status` and `deploy --plan`: what this host sets, kept across deploys."""
    try:
        config = load_config(system, layout)
    except IntegratorError as exc:
        return f"host config: {exc.message}"
    if config.empty:
        return None
    parts = [f"{k}={v}" for k, v in (("workers", config.workers), ("threads", config.threads)) if v]
    parts += [f"env {', '.join(k for k, _ in config.env)}"] if config.env else []
    parts += [f"secrets {', '.join(config.secrets)}"] if config.secrets else []
    return f"host config (kept across deploys): {'; '.join(parts)}; last changed {config.at} by {config.by}"


def with_host_config(result: Result, system: System, layout: Layout) -> Result:
    """`deploy --plan`: the host's own configuration, which the deploy keeps, named too."""
    line = summary(system, layout)
    result.data["host_config"] = line
    return result.say(f"  keep    {line}") if line else result


def remove_host_config(system: System, layout: Layout) -> list[str]:
    """Uninstall: the drop-ins (and their directories, once empty) and the recorded overrides go
    with the units; the history stays until --purge."""
    writer, removed = FileWriter(system), []
    for path in (*dropin_paths(layout), config_record(layout)):
        if writer.remove(path).changed:
            removed.append(str(path))
    for path in dropin_paths(layout):
        with contextlib.suppress(OSError):  # not empty: someone else's drop-ins stay
            system.path(path.parent).rmdir()
    return removed


# --- change -------------------------------------------------------------------------------------


def change_config(
    system: System, name: str, request: ConfigRequest, verb: str, secret: bytes | None = None
) -> Result:
    """Decide, then apply with a health-gated restart; a failure puts every file back."""
    check_service_name(name)
    require_root(system, verb)
    layout = require_installed(system, name)
    with interruptible(), DeployLock(system, layout) as lock:
        # a deploy, rollback or change killed part-way: its files are restarted first, so a
        # change written but never restarted is not taken for "nothing to change"
        repaired = repair_interrupted(system, layout, lock).lines
        facts = probe_config(system, name)
        plan = plan_config(facts, request, releases.deployed_by(), releases.now_iso())
        if not plan.restart and plan.config == facts.config:
            data = {"service": name, "release": facts.release_id, "changed": False}
            result = Result(data=data).say(f"{name}: nothing to change (no restart)")
        else:
            ctx = HostContext(system, probe_host(system), facts.spec, layout, lock)
            ctx.progress("config")  # from here a killed change leaves a note the next run repairs
            result = _apply(ctx, facts, plan, verb, secret)
    result.lines[:0] = repaired
    return result


def _apply(ctx: HostContext, facts: ConfigFacts, plan: ConfigPlan, verb: str, secret: bytes | None) -> Result:
    system, layout = ctx.system, ctx.layout
    writer = FileWriter(system)
    try:
        if plan.config != facts.config:
            text = json.dumps(plan.config.to_dict(), indent=2, sort_keys=True) + "\n"
            writer.put(config_record(layout), text, 0o600)
        for path, dropin in plan.dropins:
            writer.put(path, dropin) if dropin is not None else writer.remove(path)
        if plan.secret is not None:
            assert secret is not None and hashlib.sha256(secret).hexdigest() == plan.secret[1]
            for path, mode in secret_dirs(layout):
                writer.ensure_dir(path, mode)
            writer.put(layout.credentials_dir / plan.secret[0], secret, 0o600, secret=True)
        if plan.remove_secret is not None:
            writer.remove(layout.credentials_dir / plan.remove_secret)
    except BaseException:
        writer.undo()
        raise
    previous = previous_release(system, layout, facts.release_id)
    outcome = activate(ctx, writer, activation_for(ctx, facts.release_id), previous)
    _record(system, layout, plan, verb, "ok" if outcome.ok else "failed", outcome.reason)
    data = {"service": plan.service, "release": plan.release_id, "changed": outcome.ok,
            "changes": list(plan.changes), "outcome": "ok" if outcome.ok else "failed"}  # fmt: skip
    if outcome.ok:
        result = Result(data=data).say(
            f"{plan.service}: {verb}: {'; '.join(plan.changes) or 'drop-in rewritten'}"
        )
        result.say(f"restarted release {plan.release_id}; health check passed")
        # the workers and timers get the new values too, restarted as after a deploy's switch
        processes = plan_processes(ctx.spec, layout, probe_files(ctx, facts.release_id))
        return switch_processes(ctx, replace(processes, stop=(), remove=()), result)
    serving = "serves again" if outcome.restored else "is NOT serving (check `integrator status`)"
    code = 128 + outcome.signum if outcome.interrupted else EXIT_FAILED  # as a deploy's: 130 for Ctrl-C
    result = Result(exit_code=code, data={**data, "reason": outcome.reason, "restored": outcome.restored})
    result.say(f"{verb} of {plan.service} failed: {outcome.reason}")
    result.say(f"the previous configuration is back; release {plan.release_id} {serving}")
    result.lines.extend(f"  | {line}" for line in outcome.journal)
    return result


def _record(system: System, layout: Layout, plan: ConfigPlan, verb: str, outcome: str, message: str) -> None:
    """Append the attempt to the history (outside the undo journal: a failure stays on record)."""
    entry = {"at": releases.now_iso(), "by": who(releases.deployed_by()), "verb": verb,
             "release": plan.release_id, "changes": list(plan.changes), "outcome": outcome,
             "message": message}  # fmt: skip
    history = [*load_history(system, layout), entry][-HISTORY_KEPT:]
    FileWriter(system).put(history_record(layout), json.dumps(history, indent=1) + "\n", 0o600)
