"""The host verbs the CLI forwards to: deploy, status, list, logs, rollback, uninstall, doctor.

Each takes typed values and a target. On `LocalTarget` the host code runs here; on a remote
target the same verb runs on the host through the host tool (see transport.py), so there is
one implementation of every verb.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from ..errors import EXIT_FAILED
from ..result import Result
from .transport import REMOTE_DIR, LocalTarget, RemoteTarget, Target, stream


def _local(result: Result) -> Result:
    """Put the human lines into the data too, so `--json` on a remote host carries them back."""
    result.data["lines"] = result.lines
    return result


def _dispatch(target: Target, local: Callable[[LocalTarget], Result], args: list[str]) -> Result:
    if isinstance(target, LocalTarget):
        return _local(local(target))
    return target.invoke(args)


def deploy(
    bundle: Path,
    target: Target,
    plan_only: bool = False,
    secrets: Mapping[str, Path] | None = None,
    allowed_signers: Path | None = None,
) -> Result:
    """Deploy a bundle: health-gated, rolled back on failure (see host/deploy.py).

    With `allowed_signers` the signature is checked here, by the integrator the operator runs,
    before the bundle goes anywhere: a bundle checking its own signature proves nothing."""
    if allowed_signers is not None:
        from ..bundle.verify import verify_bundle

        verify_bundle(bundle, allowed_signers=allowed_signers)
    secrets = dict(secrets or {})
    if isinstance(target, LocalTarget):
        from .deploy import deploy_local

        return _local(deploy_local(target.system, bundle, plan_only, secrets))
    return _deploy_remote(bundle, target, plan_only, secrets)


def _deploy_remote(bundle: Path, target: RemoteTarget, plan_only: bool, secrets: dict[str, Path]) -> Result:
    """Copy the bundle and the secrets to a private directory on the host, deploy, clean up."""
    from .bundleio import require_bundle_file

    require_bundle_file(bundle)
    work = REMOTE_DIR / f"deploy-{_random.token_hex(6)}"
    target.ensure_tool()
    target.run_checked(["install", "-d", "-m", "0700", str(work)])
    try:
        remote_bundle = work / bundle.name
        target.put(bundle, remote_bundle)
        args = ["deploy", str(remote_bundle)] + (["--plan"] if plan_only else [])
        for name, path in sorted(secrets.items()):
            remote_secret = work / f"secret-{name}"
            target.put(path, remote_secret)
            args += ["--secret", f"{name}={remote_secret}"]
        return target.invoke(args)
    finally:
        target.run(["rm", "-rf", "--", str(work)])


def status(name: str | None, target: Target) -> Result:
    from .inspect import status_local

    return _dispatch(target, lambda t: status_local(t.system, name), ["status", *_opt(name)])


def list_services(name: str | None, target: Target) -> Result:
    from .inspect import list_local

    return _dispatch(target, lambda t: list_local(t.system, name), ["list", *_opt(name)])


def logs(
    name: str, target: Target, follow: bool = False, since: str | None = None, lines: int = 100
) -> Result:
    """journalctl for the service; --follow streams until stopped (Ctrl-C, SIGTERM), on any target."""
    from ..layout import Layout, profile
    from .inspect import journal_argv, logs_local

    if isinstance(target, LocalTarget):
        return _local(logs_local(target.system, name, follow, since, lines))
    if not follow:
        return target.invoke(["logs", name, "-n", str(lines), *_opt(since, "--since")])
    target.run_checked(["journalctl", "--version"])  # unreachable: one clear error before streaming
    # journalctl needs only the unit names, which are the same on every distro.
    argv = journal_argv(Layout(name, profile("debian")), True, since, lines)
    rc = stream(target.stream_argv(argv))
    if rc == 0:
        return Result()
    return Result(exit_code=EXIT_FAILED).warn(
        f"{target.describe()}: the journal stream ended (exit code {rc})"
    )


def rollback(name: str, target: Target, to: str | None = None) -> Result:
    from .lifecycle import rollback_local

    return _dispatch(
        target, lambda t: rollback_local(t.system, name, to), ["rollback", name, *_opt(to, "--to")]
    )


def uninstall(name: str, target: Target, purge: bool = False) -> Result:
    from .lifecycle import uninstall_local

    args = ["uninstall", name] + (["--purge"] if purge else [])
    return _dispatch(target, lambda t: uninstall_local(t.system, name, purge), args)


def doctor(name: str | None, target: Target) -> Result:
    from .inspect import doctor_local

    return _dispatch(target, lambda t: doctor_local(t.system, name), ["doctor", *_opt(name)])


def _opt(value: str | None, flag: str | None = None) -> list[str]:
    if value is None:
        return []
    return [flag, value] if flag else [value]
