"""The host verbs the CLI forwards to: deploy, status, list, logs, rollback, uninstall, doctor.

Each takes typed values and a target. On `LocalTarget` the host code runs here (host/verbs.py);
on a remote target the same verb runs on the host through the host tool (see transport.py), so
there is one implementation of every verb. Arguments are checked here, before any host is reached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import EXIT_FAILED, UsageError
from ..host import verbs
from ..host.progress import step as announce
from ..host.verbs import checked_copy, checked_name
from ..result import Result
from ..spec import check_service_name
from .remote import Arg, Upload
from .transport import HostTarget, LocalTarget, RemoteTarget

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def deploy(
    bundle: Path,
    target: HostTarget,
    plan_only: bool = False,
    secrets: Mapping[str, Path] | None = None,
    allowed_signers: Path | None = None,
    sha256: str | None = None,
) -> Result:
    """Deploy a bundle: health-gated, rolled back on failure (see host/deploy.py).

    The bundle is read once, into a private copy (`verbs.checked_copy`): `sha256` (`--sha256`) and,
    with `allowed_signers`, the signature are checked on that copy, here, by the integrator the
    operator runs, and only that copy is deployed. A remote host gets the copy's sha256 along
    and deploys only bytes that hash to it (a bundle checking its own signature proves nothing)."""
    if isinstance(target, LocalTarget):
        return verbs.deploy(target.system, bundle, plan_only, secrets, allowed_signers, sha256)
    with checked_copy(bundle, sha256, allowed_signers) as (copy, digest):
        return _deploy_remote(copy, digest, target, plan_only, dict(secrets or {}))


def _deploy_remote(
    bundle: Path, digest: str, target: RemoteTarget, plan_only: bool, secrets: dict[str, Path]
) -> Result:
    """One connection: the bundle and the secrets staged privately on the host, checked by
    sha256 there, deployed, removed (see remote.py and host/stager.py)."""
    name = bundle.name if _PLAIN_NAME.fullmatch(bundle.name) else "bundle.pyz"
    uploads = [Upload(name, bundle, digest, bundle.stat().st_size)]
    args: list[Arg] = ["deploy", ("", name), "--sha256", digest, *(["--plan"] if plan_only else [])]
    for n, (secret, path) in enumerate(sorted(secrets.items()), start=1):
        if not path.is_file():
            raise UsageError(f"--secret {secret}={path}: no such file")
        uploads.append(Upload.of(f"secret-{n}", path))
        args += ["--secret", (f"{secret}=", f"secret-{n}")]
    size = sum(u.size for u in uploads)
    announce("send", f"{target.describe()}, {size / 1e6:.1f} MB")  # the host's own steps follow
    return target.invoke(args, uploads)


def status(name: str | None, target: HostTarget) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.status(target.system, name)
    return target.invoke(["status", *_opt(checked_name(name))])


def list_services(name: str | None, target: HostTarget) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.list_services(target.system, name)
    return target.invoke(["list", *_opt(checked_name(name))])


def logs(
    name: str,
    target: HostTarget,
    source: str = "all",
    follow: bool = False,
    since: str | None = None,
    lines: int = 100,
) -> Result:
    """journalctl for the service and its site; --follow streams until stopped, on any target."""
    from ..host.journal import check_source, journal_argv
    from ..host.stream import stream
    from ..layout import Layout, profile

    if isinstance(target, LocalTarget):
        return verbs.logs(target.system, name, source, follow, since, lines)
    check_service_name(name)
    check_source(source)
    if not follow:
        return target.invoke(["logs", name, "--source", source, "-n", str(lines), *_opt(since, "--since")])
    target.run_checked(["journalctl", "--version"])  # unreachable: one clear error before streaming
    # journalctl needs only the unit names, which are the same on every distro.
    argv = journal_argv(Layout(name, profile("debian")), source, True, since, lines)
    rc = stream(target.stream_argv(argv))
    if rc == 0:
        return Result()
    return Result(exit_code=EXIT_FAILED).warn(
        f"{target.describe()}: the journal stream ended (exit code {rc})"
    )


def rollback(name: str, target: HostTarget, to: str | None = None) -> Result:
    from ..render.common import check_release_id

    if isinstance(target, LocalTarget):
        return verbs.rollback(target.system, name, to)
    check_service_name(name)
    if to is not None:
        check_release_id(to)
    return target.invoke(["rollback", name, *_opt(to, "--to")])


def uninstall(name: str, target: HostTarget, purge: bool = False) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.uninstall(target.system, name, purge)
    check_service_name(name)
    return target.invoke(["uninstall", name] + (["--purge"] if purge else []))


def doctor(name: str | None, target: HostTarget, bundle: Path | None = None) -> Result:
    """Check a host before a deploy and its services after; with `bundle` (only on this machine,
    as `python3 BUNDLE.pyz doctor`) also whether that bundle fits the host."""
    if isinstance(target, LocalTarget):
        return verbs.doctor(target.system, name, bundle)
    return target.invoke(["doctor", *_opt(checked_name(name))])


def _opt(value: str | None, flag: str | None = None) -> list[str]:
    if value is None:
        return []
    return [flag, value] if flag else [value]
