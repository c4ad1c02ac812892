"""The host verbs the CLI forwards to: deploy, status, list, releases, logs, rollback, uninstall, doctor.

Each takes typed values and a target. On `LocalTarget` the host code runs here (host/verbs.py);
on a remote target the same verb runs on the host through the host tool (see transport.py), with
the argv built from the verb's one declaration (catalog_host.py, `verbtable.tool_argv`), so there is
one implementation of every verb. Arguments are checked here, before any host is reached.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..catalog_host import HOST_VERBS
from ..errors import EXIT_FAILED, UsageError
from ..host import verbs
from ..host.deploy_options import DeployOptions
from ..host.progress import step as announce
from ..host.verbs import checked_copy, checked_name
from ..result import Result
from ..spec import check_service_name
from ..verbtable import tool_argv
from .remote import Upload
from .transport import HostTarget, LocalTarget, RemoteTarget

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_BY_NAME = {verb.name: verb for verb in HOST_VERBS}


def invoke_verb(
    target: RemoteTarget, verb: str, given: Mapping[str, Any], known: Mapping[Path, str] | None = None
) -> Result:
    """Run `verb` with the values `given` on a remote host: one connection, each file it names
    staged privately there and checked by sha256 (`known`: digests already computed)."""
    uploads: list[Upload] = []

    def stage(path: Path) -> str:
        taken = {u.name for u in uploads}
        plain = _PLAIN_NAME.fullmatch(path.name) and not path.name.startswith("integrator-host-")
        name = path.name if plain and path.name not in taken else f"upload-{len(uploads) + 1}"
        digest = (known or {}).get(path)
        uploads.append(Upload(name, path, digest, path.stat().st_size) if digest else Upload.of(name, path))
        return name

    argv = tool_argv(_BY_NAME[verb], given, stage)
    if uploads:  # the host's own steps follow
        announce("send", f"{target.describe()}, {sum(u.size for u in uploads) / 1e6:.1f} MB")
    return target.invoke(argv, uploads)


def deploy(options: DeployOptions, target: HostTarget) -> Result:
    """Deploy a bundle: health-gated, rolled back on failure (see host/deploy.py).

    The bundle is read once, into a private copy (`verbs.checked_copy`): `--sha256` and, with
    `--allowed-signers`, the signature are checked on that copy, here, by the integrator the
    operator runs, and only that copy is deployed. A remote host gets the copy's sha256 along
    and deploys only bytes that hash to it (a bundle checking its own signature proves nothing)."""
    if isinstance(target, LocalTarget):
        return verbs.deploy(target.system, options)
    if options.release_id is not None:
        from ..render.common import check_release_id

        check_release_id(options.release_id)
    for secret, path in sorted(options.secrets.items()):
        if not path.is_file():
            raise UsageError(f"--secret {secret}={path}: no such file")
    with checked_copy(options.bundle, options.sha256, options.allowed_signers) as (copy, digest):
        given = {
            "bundle": copy,
            "plan_only": options.plan_only,
            "secrets": dict(options.secrets),
            "sha256": digest,
            "release_id": options.release_id,
        }
        return invoke_verb(target, "deploy", given, known={copy: digest})


def status(name: str | None, target: HostTarget) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.status(target.system, name)
    return invoke_verb(target, "status", {"name": checked_name(name)})


def list_services(target: HostTarget) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.list_services(target.system)
    return invoke_verb(target, "list", {})


def releases(name: str, target: HostTarget) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.releases(target.system, name)
    return invoke_verb(target, "releases", {"name": check_service_name(name)})


def logs(
    name: str,
    target: HostTarget,
    source: str = "all",
    follow: bool = False,
    since: str | None = None,
    lines: int = 100,
    process: str | None = None,
) -> Result:
    """journalctl for the service and its site (or one process: --process X); --follow streams
    until stopped, on any target."""
    from ..host.journal import check_process, check_source, journal_argv
    from ..host.stream import stream
    from ..layout import Layout, profile

    if isinstance(target, LocalTarget):
        return verbs.logs(target.system, name, source, follow, since, lines, process)
    check_service_name(name)
    check_source(source)
    check_process(source, process)
    if not follow:
        sent = {"name": name, "source": source, "lines": lines, "since": since, "process": process}
        return invoke_verb(target, "logs", sent)
    target.run_checked(["journalctl", "--version"])  # unreachable: one clear error before streaming
    # journalctl needs only the unit names, which are the same on every distro.
    argv = journal_argv(Layout(name, profile("debian")), source, True, since, lines, process)
    rc = stream(target.stream_argv(argv))
    if rc == 0:
        return Result()
    return Result(exit_code=EXIT_FAILED).warn(
        f"{target.describe()}: the journal stream ended (exit code {rc})"
    )


def run(name: str, command: Sequence[str], target: HostTarget) -> Result:
    """`run NAME -- CMD`: the command as the service would run it (host/run.py), on the host;
    a terminal when ours is one; the command's exit code is ours."""
    from ..render.transient import check_command

    tty = sys.stdin.isatty() and sys.stdout.isatty()
    if isinstance(target, LocalTarget):
        return verbs.run(target.system, name, command, tty)
    check_service_name(name)
    check_command(["/", *command[1:]] if command else [])
    argv = tool_argv(_BY_NAME["run"], {"name": name, "command": list(command)}, _no_uploads)
    return Result(exit_code=target.run_tool([str(a) for a in argv], tty))


def _no_uploads(path: Path) -> str:
    raise UsageError(f"{path}: this verb sends no files")


def rollback(name: str, target: HostTarget, to: str | None = None) -> Result:
    from ..render.common import check_release_id

    if isinstance(target, LocalTarget):
        return verbs.rollback(target.system, name, to)
    check_service_name(name)
    if to is not None:
        check_release_id(to)
    return invoke_verb(target, "rollback", {"name": name, "to": to})


def uninstall(name: str, target: HostTarget, purge: bool = False) -> Result:
    if isinstance(target, LocalTarget):
        return verbs.uninstall(target.system, name, purge)
    return invoke_verb(target, "uninstall", {"name": check_service_name(name), "purge": purge})


def doctor(name: str | None, target: HostTarget, bundle: Path | None = None) -> Result:
    """Check a host before a deploy and its services after; with `bundle` (only on this machine,
    as `python3 BUNDLE.pyz doctor`) also whether that bundle fits the host."""
    if isinstance(target, LocalTarget):
        return verbs.doctor(target.system, name, bundle)
    return invoke_verb(target, "doctor", {"name": checked_name(name)})


def config(words: Sequence[str], target: HostTarget) -> Result:
    """`config NAME`, `config set NAME KEY=VALUE...`, `config unset NAME KEY...` (host/config.py);
    the words are checked here first and again on the host."""
    from ..host.config_plan import check_assignment, check_env_name, config_words

    if isinstance(target, LocalTarget):
        return verbs.config(target.system, words)
    action, name, items = config_words(words)
    check_service_name(name)
    for item in items:
        check_assignment(item) if action == "set" else check_env_name(item)
    return invoke_verb(target, "config", {"words": list(words)})


def scale(name: str, settings: Sequence[str], target: HostTarget) -> Result:
    from ..host.config_plan import scale_request

    if isinstance(target, LocalTarget):
        return verbs.scale(target.system, name, settings)
    check_service_name(name)
    scale_request(settings)
    return invoke_verb(target, "scale", {"name": name, "settings": list(settings)})


def secret(words: Sequence[str], target: HostTarget, source: Path | None = None) -> Result:
    """The file is checked here (a regular file, not a symlink, not writable by others), sent
    staged and root-only, and checked again on the host."""
    from ..host.config_facts import read_secret_input
    from ..host.config_plan import secret_words

    if isinstance(target, LocalTarget):
        return verbs.secret(target.system, words, source)
    action, name, _key = secret_words(words)
    check_service_name(name)
    if action == "set":
        if source is None:
            raise UsageError("secret set NAME KEY: give --from FILE")
        read_secret_input(source)
    return invoke_verb(target, "secret", {"words": list(words), "source": source})
