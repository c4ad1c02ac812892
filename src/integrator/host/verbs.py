"""The host verbs as they run on this machine: deploy, status, list, releases, logs, rollback, ...

Host-side: the bundle's own command line and the host tool (`pyzmain.py`, which runs each verb
sent to a remote host) call these, and so does the operator's `integrator VERB`
(targets/commands.py) on `--local`; catalog_host.py names them. Each returns its human lines in its
data too, so `--json` carries them back.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import UsageError
from ..result import Result
from ..spec import check_service_name
from .deploy_options import DeployOptions
from .system import System

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def with_lines(result: Result) -> Result:
    """Put the human lines into the data too, so `--json` on a remote host carries them back."""
    result.data["lines"] = result.lines
    return result


def checked_name(name: str | None) -> str | None:
    """A NAME from either command line (integrator's or a bundle's), checked here, before any
    target is reached, by the rule service.toml uses; the host checks it again."""
    return None if name is None else check_service_name(name)


@contextlib.contextmanager
def checked_copy(
    bundle: Path, sha256: str | None = None, allowed_signers: Path | None = None
) -> Iterator[tuple[Path, str]]:
    """The bundle read once, into a private copy (`private_copy`), with `sha256` (`--sha256`) and,
    with `allowed_signers`, the signature checked on that copy: only that copy is deployed.
    Yields the copy and its sha256."""
    from .bundleio import private_copy, require_sha256

    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise UsageError(f"--sha256 {sha256!r}: expected 64 hex digits (as `integrator bundle` prints)")
    with private_copy(bundle) as (copy, digest):
        if sha256 is not None:
            require_sha256(bundle, digest, sha256)
        if allowed_signers is not None:
            from ..bundle import verify

            verify.verify_bundle(copy, allowed_signers=allowed_signers)
        yield copy, digest


def deploy(system: System, options: DeployOptions) -> Result:
    """Deploy a bundle on this machine: health-gated, rolled back on failure (see deploy.py)."""
    from ..render.common import check_release_id
    from .deploy import deploy_local

    if options.release_id is not None:
        check_release_id(options.release_id)
    with checked_copy(options.bundle, options.sha256, options.allowed_signers) as (copy, _digest):
        secrets = dict(options.secrets)
        return with_lines(deploy_local(system, copy, options.plan_only, secrets, options.release_id))


def deploy_here(system: System, options: DeployOptions) -> Result:
    """A deploy started on the host (a bundle's own, the host tool's): with `allowed_signers`, a
    bundle file not signed is refused before anything else, then checked again on the copy deployed."""
    if options.allowed_signers is not None:
        from ..bundle.verify import verify_bundle

        verify_bundle(options.bundle, allowed_signers=options.allowed_signers)
    return deploy(system, options)


def lb(
    system: System,
    bundle: Path,
    backends: Sequence[str] = (),
    down: Sequence[str] = (),
    drain_timeout: float = 30.0,
    plan_only: bool = False,
) -> Result:
    """A fleet's load balancer on this host: the bundle's site routing to `backends` (host/lb.py)."""
    from ..render.lb import Backends
    from .lb import lb_sync

    return lb_sync(system, bundle, Backends(tuple(backends), frozenset(down)), drain_timeout, plan_only)


def probe(system: System, bundle: Path, address: str) -> Result:
    """The bundle's health path on one app host, asked directly, as its load balancer asks."""
    from .lb import lb_probe

    return lb_probe(system, bundle, address)


def status(system: System, name: str | None) -> Result:
    from .status import status_local

    return with_lines(status_local(system, checked_name(name)))


def list_services(system: System) -> Result:
    from .status import list_local

    return with_lines(list_local(system, None))


def releases(system: System, name: str) -> Result:
    from .status import list_local

    check_service_name(name)
    return with_lines(list_local(system, name))


def verify(system: System, bundle: Path, allowed_signers: Path | None = None) -> Result:
    """Every member of the bundle against its manifest, and its signature if asked (reads only)."""
    from ..bundle.verify import verify_bundle

    return verify_bundle(bundle, allowed_signers=allowed_signers)


def logs(
    system: System,
    name: str,
    source: str = "all",
    follow: bool = False,
    since: str | None = None,
    lines: int = 100,
    process: str | None = None,
) -> Result:
    """journalctl for the service (and its nginx site's lines), or of one of its processes or
    timers (--process X); --follow streams until stopped."""
    from .journal import logs_local

    check_service_name(name)
    return with_lines(logs_local(system, name, source, follow, since, lines, process))


def run(system: System, name: str, command: Sequence[str], tty: bool | None = None) -> Result:
    """A one-off command as the service would run it (host/run.py), with its exit code."""
    from .run import run_local

    check_service_name(name)
    return Result(exit_code=run_local(system, name, command, tty))


def rollback(system: System, name: str, to: str | None = None) -> Result:
    from ..render.common import check_release_id
    from .lifecycle import rollback_local

    check_service_name(name)
    if to is not None:
        check_release_id(to)
    return with_lines(rollback_local(system, name, to))


def uninstall(system: System, name: str, purge: bool = False) -> Result:
    from .uninstall import uninstall_local

    check_service_name(name)
    return with_lines(uninstall_local(system, name, purge))


def doctor(system: System, name: str | None, bundle: Path | None = None) -> Result:
    """Check a host before a deploy and its services after; with `bundle` (as `python3 BUNDLE.pyz
    doctor`) also whether that bundle fits the host."""
    from .status import doctor_local

    return with_lines(doctor_local(system, checked_name(name), bundle))


def config(system: System, words: Sequence[str]) -> Result:
    """`config NAME` shows, `config set NAME KEY=VALUE...` / `config unset NAME KEY...` change
    this host's overrides (host/config.py), health-gated."""
    from .config import change_config, show_config
    from .config_plan import ConfigRequest, check_assignment, check_env_name, config_words

    action, name, items = config_words(words)
    check_service_name(name)
    if action == "show":
        return with_lines(show_config(system, name))
    if action == "set":
        request = ConfigRequest(set_env=tuple(check_assignment(item) for item in items))
    else:
        request = ConfigRequest(unset=tuple(check_env_name(item) for item in items))
    return with_lines(change_config(system, name, request, f"config {action}"))


def scale(system: System, name: str, settings: Sequence[str]) -> Result:
    """gunicorn's workers/threads on this host, health-gated."""
    from .config import change_config
    from .config_plan import scale_request

    check_service_name(name)
    return with_lines(change_config(system, name, scale_request(settings), "scale"))


def secret(system: System, words: Sequence[str], source: Path | None = None) -> Result:
    """`secret set NAME KEY --from FILE` / `secret rm NAME KEY`, health-gated."""
    import hashlib

    from .config import change_config
    from .config_facts import read_secret_input
    from .config_plan import ConfigRequest, secret_words

    action, name, key = secret_words(words)
    check_service_name(name)
    if action == "rm":
        if source is not None:
            raise UsageError("secret rm takes no --from")
        return with_lines(change_config(system, name, ConfigRequest(secret_rm=key), "secret rm"))
    if source is None:
        raise UsageError(f"secret set {name} {key}: give --from FILE")
    data = read_secret_input(source)
    request = ConfigRequest(secret_set=(key, hashlib.sha256(data).hexdigest()))
    return with_lines(change_config(system, name, request, "secret set", data))
