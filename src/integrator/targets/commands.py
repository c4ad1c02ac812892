"""The host verbs the CLI forwards to: deploy, status, list, logs, rollback, uninstall, doctor.

Each takes typed values and a target. On `LocalTarget` the host code runs here; on a remote
target the same verb runs on the host through the host tool (see transport.py), so there is
one implementation of every verb.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from ..errors import EXIT_FAILED, UsageError
from ..result import Result
from ..spec import check_service_name
from .remote import Arg, Upload
from .transport import LocalTarget, RemoteTarget, Target, stream

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


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
    sha256: str | None = None,
) -> Result:
    """Deploy a bundle: health-gated, rolled back on failure (see host/deploy.py).

    The bundle is read once, into a private copy (`private_copy`): `sha256` (`--sha256`) and,
    with `allowed_signers`, the signature are checked on that copy, here, by the integrator the
    operator runs, and only that copy is deployed. A remote host gets the copy's sha256 along
    and deploys only bytes that hash to it (a bundle checking its own signature proves nothing)."""
    from .bundleio import private_copy, require_sha256

    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise UsageError(f"--sha256 {sha256!r}: expected 64 hex digits (as `integrator bundle` prints)")
    secrets = dict(secrets or {})
    with private_copy(bundle) as (copy, digest):
        if sha256 is not None:
            require_sha256(bundle, digest, sha256)
        if allowed_signers is not None:
            from ..bundle import verify

            verify.verify_bundle(copy, allowed_signers=allowed_signers)
        if isinstance(target, LocalTarget):
            from .deploy import deploy_local

            return _local(deploy_local(target.system, copy, plan_only, secrets))
        return _deploy_remote(copy, digest, target, plan_only, secrets)


def _deploy_remote(
    bundle: Path, digest: str, target: RemoteTarget, plan_only: bool, secrets: dict[str, Path]
) -> Result:
    """One connection: the bundle and the secrets staged privately on the host, checked by
    sha256 there, deployed, removed (see remote.py and stager.py)."""
    name = bundle.name if _PLAIN_NAME.fullmatch(bundle.name) else "bundle.pyz"
    uploads = [Upload(name, bundle, digest, bundle.stat().st_size)]
    args: list[Arg] = ["deploy", ("", name), "--sha256", digest, *(["--plan"] if plan_only else [])]
    for n, (secret, path) in enumerate(sorted(secrets.items()), start=1):
        if not path.is_file():
            raise UsageError(f"--secret {secret}={path}: no such file")
        uploads.append(Upload.of(f"secret-{n}", path))
        args += ["--secret", (f"{secret}=", f"secret-{n}")]
    return target.invoke(args, uploads)


def _checked(name: str | None) -> str | None:
    """A NAME from either command line (integrator's or a bundle's), checked here, before any
    target is reached, by the rule service.toml uses; the host checks it again."""
    return None if name is None else check_service_name(name)


def status(name: str | None, target: Target) -> Result:
    from .inspect import status_local

    name = _checked(name)
    return _dispatch(target, lambda t: status_local(t.system, name), ["status", *_opt(name)])


def list_services(name: str | None, target: Target) -> Result:
    from .inspect import list_local

    name = _checked(name)
    return _dispatch(target, lambda t: list_local(t.system, name), ["list", *_opt(name)])


def logs(
    name: str, target: Target, follow: bool = False, since: str | None = None, lines: int = 100
) -> Result:
    """journalctl for the service; --follow streams until stopped (Ctrl-C, SIGTERM), on any target."""
    from ..layout import Layout, profile
    from .inspect import journal_argv, logs_local

    check_service_name(name)
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
    from ..render.common import check_release_id
    from .lifecycle import rollback_local

    check_service_name(name)
    if to is not None:
        check_release_id(to)
    return _dispatch(
        target, lambda t: rollback_local(t.system, name, to), ["rollback", name, *_opt(to, "--to")]
    )


def uninstall(name: str, target: Target, purge: bool = False) -> Result:
    from .lifecycle import uninstall_local

    check_service_name(name)
    args = ["uninstall", name] + (["--purge"] if purge else [])
    return _dispatch(target, lambda t: uninstall_local(t.system, name, purge), args)


def doctor(name: str | None, target: Target, bundle: Path | None = None) -> Result:
    """Check a host before a deploy and its services after; with `bundle` (only on this machine,
    as `python3 BUNDLE.pyz doctor`) also whether that bundle fits the host."""
    from .inspect import doctor_local

    name = _checked(name)
    return _dispatch(target, lambda t: doctor_local(t.system, name, bundle), ["doctor", *_opt(name)])


def _opt(value: str | None, flag: str | None = None) -> list[str]:
    if value is None:
        return []
    return [flag, value] if flag else [value]
