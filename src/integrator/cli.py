"""Command line: parse, forward, print. No logic lives here.

Each verb has an `_add_<verb>` that builds its sub-parser and a `_cmd_<verb>` that calls the
command function with typed values. Command modules are imported lazily, so `--help` is fast
and the host-side commands never import build-side libraries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from . import __version__
from .host.journal import SOURCE_HELP, SOURCES
from .host.progress import json_lines_sink, reporting, text_sink
from .result import Result, run_and_emit

if TYPE_CHECKING:
    from .targets.transport import HostTarget

EPILOG = """\
exit codes:
  0  success (for `plan`/`deploy --plan`: also when changes are pending)
  1  the operation ran and failed (check, health check, verify, deploy rolled back)
  2  bad input: usage, service.toml, name, bundle path
  3  this machine lacks something (root, a tool, kernel features); the message says what

Every command prints for a person; add --json for one JSON object on stdout.
deploy and rollback print each step on stderr as it starts, with the seconds since the start;
--json-lines prints those steps and then the JSON object as one JSON object per line on stdout.
"""
JSON_LINES_HELP = "print each step as one JSON object per line, then the result as the last line"

Handler = Callable[[argparse.Namespace], Result]


def _distro(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--distro", choices=("debian", "rhel"), default="debian", help="host family (default: debian)"
    )


def _target(p: argparse.ArgumentParser) -> None:
    """Where a host command acts: a sandbox host, this machine, or one host over ssh."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--host", metavar="SANDBOX", help="a sandbox host made by `integrator sandbox create`")
    g.add_argument("--local", action="store_true", help="this machine (the default)")
    g.add_argument("--ssh", metavar="USER@HOST", help="a host via ssh (BatchMode; -F $INTEGRATOR_SSH_CONFIG)")


def _target_of(ns: argparse.Namespace) -> HostTarget:
    from .targets.transport import target_from_args

    return target_from_args(host=ns.host, ssh=ns.ssh)


# --- service sources -------------------------------------------------------------------


def _add_new(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("new", help="create a Flask service from the template", description=_cmd_new.__doc__)
    p.add_argument("name", help="service name: a-z, 0-9, _ (unit, user and package name)")
    p.add_argument("dir", nargs="?", type=Path, help="where to create it (default: ./NAME)")
    p.set_defaults(func=_cmd_new)


def _cmd_new(ns: argparse.Namespace) -> Result:
    """Create a new service from the Flask template: app factory, /healthz, tests, service.toml."""
    from .template.commands import new

    return new(ns.name, ns.dir)


def _add_clone(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clone", help="copy a service and rename it everywhere", description=_cmd_clone.__doc__
    )
    p.add_argument("src", type=Path, help="directory of the service to copy")
    p.add_argument("name", help="the new service's name")
    p.add_argument("dir", nargs="?", type=Path, help="where to put it (default: ./NAME)")
    p.set_defaults(func=_cmd_clone)


def _cmd_clone(ns: argparse.Namespace) -> Result:
    """Copy a service and rename it in package, spec, tests, docs, unit and socket names."""
    from .template.commands import clone

    return clone(ns.src, ns.name, ns.dir)


def _add_init(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="adopt an existing Flask/WSGI project", description=_cmd_init.__doc__)
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), help="the project (default: .)")
    p.add_argument("--name", help="service name (default: derived from the project)")
    p.add_argument("--entry", help="WSGI entry, e.g. 'app:app' or 'pkg:create_app()' (default: found)")
    p.set_defaults(func=_cmd_init)


def _cmd_init(ns: argparse.Namespace) -> Result:
    """Write service.toml for an existing Flask/WSGI project, finding its app and requirements."""
    from .template.commands import init

    return init(ns.dir, name=ns.name, entry=ns.entry)


# --- rendering and planning ------------------------------------------------------------


def _add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="write the unit, socket, gunicorn and nginx files", description=_cmd_render.__doc__
    )
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), help="service directory (default: .)")
    _distro(p)
    p.add_argument("--out", type=Path, help="write the files below this directory (default: print them)")
    p.add_argument("--release", default="RELEASE", help="release id the unit points at (default: RELEASE)")
    p.set_defaults(func=_cmd_render)


def _cmd_render(ns: argparse.Namespace) -> Result:
    """Render every file a deploy writes, from service.toml alone: nothing on any host is read."""
    from .render.commands import render

    return render(ns.dir, distro=ns.distro, out=ns.out, release_id=ns.release)


def _add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", help="show every file a deploy would write, as diffs", description=_cmd_plan.__doc__
    )
    p.add_argument(
        "source", nargs="?", type=Path, default=Path("."), help="service directory or bundle (default: .)"
    )
    _distro(p)
    p.add_argument(
        "--root", type=Path, default=Path("/"), help="compare against files below ROOT (default: /)"
    )
    p.set_defaults(func=_cmd_plan)


def _cmd_plan(ns: argparse.Namespace) -> Result:
    """List the files a deploy would create or change, with unified diffs; changes nothing."""
    from .plan import plan_command

    return plan_command(ns.source, distro=ns.distro, root=ns.root)


# --- bundles ---------------------------------------------------------------------------


def _add_bundle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundle", help="build one offline, self-deploying .pyz", description=_cmd_bundle.__doc__
    )
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), help="service directory (default: .)")
    p.add_argument(
        "--python",
        help="target Pythons, comma separated (default: those of 3.9,3.11,3.12 the project's "
        "requires-python admits)",
    )
    p.add_argument(
        "--platform",
        default="x86_64",
        help="target machines, comma separated: x86_64, aarch64 (default: x86_64)",
    )
    p.add_argument(
        "-o", "--output", type=Path, default=Path("dist"), help="output directory (default: ./dist)"
    )
    p.add_argument(
        "--sign", type=Path, metavar="KEY", help="sign with this ssh private key (ssh-keygen -Y sign)"
    )
    p.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="do not install, import and ask the app for its health path before writing the bundle "
        "(for apps that need their secrets or a database to answer; the host's health check stays the gate)",
    )
    p.set_defaults(func=_cmd_bundle)


def _cmd_bundle(ns: argparse.Namespace) -> Result:
    """Build NAME-VERSION.pyz: app wheel, wheelhouse per target, hash lock, host installer, manifest."""
    from .bundle.commands import bundle

    return bundle(
        ns.dir,
        pythons=_csv(ns.python) if ns.python is not None else None,
        platforms=_csv(ns.platform),
        output=ns.output,
        sign_key=ns.sign,
        preflight=ns.preflight,
    )


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a bundle's manifest and every hash", description=_cmd_verify.__doc__
    )
    p.add_argument("bundle", type=Path)
    p.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="require a valid signature by a key in FILE (lines: integrator ssh-ed25519 AAAA...)",
    )
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(ns: argparse.Namespace) -> Result:
    """Verify a bundle: every file listed and hashed, nothing added, no path escaping it."""
    from .bundle.commands import verify

    return verify(ns.bundle, allowed_signers=ns.allowed_signers)


# --- host lifecycle --------------------------------------------------------------------


def _add_deploy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy", help="install a bundle on a host, health-gated", description=_cmd_deploy.__doc__
    )
    p.add_argument("bundle", type=Path)
    _target(p)
    p.add_argument("--plan", action="store_true", help="show what would change and change nothing")
    p.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="refuse the bundle unless signed by one of these keys (checked here, before anything is copied)",
    )
    p.add_argument(
        "--sha256",
        metavar="HEX",
        help="refuse the bundle unless its sha256 is HEX (as `integrator bundle` printed it)",
    )
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="supply a secret named in service.toml from a local file (repeatable)",
    )
    p.set_defaults(func=_cmd_deploy)


def _cmd_deploy(ns: argparse.Namespace) -> Result:
    """Deploy: verify, unpack a release, build its venv offline, write units and site, start,
    health-check through nginx over HTTPS, then switch `current`; on failure roll back."""
    from .host.secrets import parse_secret_args
    from .targets.commands import deploy

    return deploy(
        ns.bundle,
        _target_of(ns),
        plan_only=ns.plan,
        secrets=parse_secret_args(ns.secret),
        allowed_signers=ns.allowed_signers,
        sha256=ns.sha256,
    )


def _add_simple_host_verb(
    sub: argparse._SubParsersAction, verb: str, helptext: str, func: Handler, name_required: bool
) -> argparse.ArgumentParser:
    p = sub.add_parser(verb, help=helptext, description=func.__doc__)
    p.add_argument("name", nargs=None if name_required else "?", help="service name")
    _target(p)
    p.set_defaults(func=func)
    return p


def _cmd_status(ns: argparse.Namespace) -> Result:
    """Show the service's state: release serving, unit and socket state, last health check."""
    from .targets.commands import status

    return status(ns.name, _target_of(ns))


def _cmd_list(ns: argparse.Namespace) -> Result:
    """List the services integrator manages on the host, or one service's releases."""
    from .targets.commands import list_services

    return list_services(ns.name, _target_of(ns))


def _cmd_logs(ns: argparse.Namespace) -> Result:
    """Show the service's journal (journald is the truth): a thin wrapper around journalctl."""
    from .targets.commands import logs

    return logs(ns.name, _target_of(ns), ns.source, follow=ns.follow, since=ns.since, lines=ns.lines)


def _cmd_rollback(ns: argparse.Namespace) -> Result:
    """Switch back to the previous good release (or --to ID), health-gated like a deploy."""
    from .targets.commands import rollback

    return rollback(ns.name, _target_of(ns), to=ns.to)


def _cmd_uninstall(ns: argparse.Namespace) -> Result:
    """Remove units, site, socket, user and releases; nginx stays valid and is reloaded."""
    from .targets.commands import uninstall

    return uninstall(ns.name, _target_of(ns), purge=ns.purge)


def _cmd_doctor(ns: argparse.Namespace) -> Result:
    """Check the host (and the service): tools, nginx -t, units, venv vs host Python, SELinux."""
    from .targets.commands import doctor

    return doctor(ns.name, _target_of(ns))


def _add_host_verbs(sub: argparse._SubParsersAction) -> None:
    _add_simple_host_verb(sub, "status", "show a service's state", _cmd_status, name_required=False)
    _add_simple_host_verb(
        sub, "list", "list services, or one service's releases", _cmd_list, name_required=False
    )
    p = _add_simple_host_verb(sub, "logs", "show a service's journal", _cmd_logs, name_required=True)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--since", help="journalctl --since, e.g. '1 hour ago' or '2026-01-01 10:00'")
    p.add_argument("-n", "--lines", type=int, default=100, help="how many lines (default: 100)")
    p.add_argument("--source", choices=SOURCES, default="all", help=SOURCE_HELP)
    p = _add_simple_host_verb(sub, "rollback", "go back to the previous good release", _cmd_rollback, True)
    p.add_argument("--to", metavar="ID", help="a release id from `integrator list NAME`")
    p = _add_simple_host_verb(sub, "uninstall", "remove a service from a host", _cmd_uninstall, True)
    p.add_argument("--purge", action="store_true", help="also remove its data, secrets and certificates")
    _add_simple_host_verb(
        sub, "doctor", "check a host (and a service) for known problems", _cmd_doctor, False
    )


# --- sandbox hosts ---------------------------------------------------------------------


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="disposable real-systemd Debian hosts for trying deploys",
        description="Disposable Debian 12 hosts booted with a real systemd (systemd-nspawn), each in its own "
        "network namespace, reachable from this machine at its own address. Needs root.",
    )
    ss = p.add_subparsers(dest="sandbox_verb", required=True, metavar="VERB")
    c = ss.add_parser(
        "create",
        help="build (once, cached) and boot a host",
        description="build (once, cached) and boot a host",
    )
    c.add_argument("name")
    c.set_defaults(func=lambda ns: _sandbox().create_cmd(ns.name))
    e = ss.add_parser(
        "exec",
        help="run a command inside: sandbox exec NAME -- CMD...",
        description="run a command inside: sandbox exec NAME -- CMD...",
    )
    e.add_argument("name")
    e.add_argument("argv", nargs=argparse.REMAINDER)
    e.set_defaults(func=lambda ns: _sandbox().exec_cmd(ns.name, _strip_dashdash(ns.argv)))
    cp = ss.add_parser(
        "copy",
        help="copy files in or out: copy SRC NAME:DEST, or copy NAME:SRC DEST",
        description="copy files in or out: copy SRC NAME:DEST, or copy NAME:SRC DEST",
    )
    cp.add_argument("src")
    cp.add_argument("dest")
    cp.set_defaults(func=lambda ns: _sandbox().copy_cmd(ns.src, ns.dest))
    ss.add_parser("list", help="list hosts", description="list hosts").set_defaults(
        func=lambda ns: _sandbox().list_cmd()
    )
    sh = ss.add_parser("shell", help="an interactive shell inside", description="an interactive shell inside")
    sh.add_argument("name")
    sh.set_defaults(func=lambda ns: _sandbox().shell_cmd(ns.name))
    r = ss.add_parser(
        "reboot",
        help="reboot a host; it comes back with the same files",
        description="reboot a host; it comes back with the same files",
    )
    r.add_argument("name")
    r.set_defaults(func=lambda ns: _sandbox().reboot_cmd(ns.name))
    d = ss.add_parser(
        "destroy",
        help="power off and remove a host, leaving nothing behind",
        description="power off and remove a host, leaving nothing behind",
    )
    d.add_argument("name", nargs="?")
    d.add_argument("--all", action="store_true", help="every host")
    d.set_defaults(func=lambda ns: _sandbox().destroy_cmd(ns.name, all_hosts=ns.all))


def _add_fleet(sub: argparse._SubParsersAction) -> None:
    try:  # build side only: the host tool carries no fleet/
        from .fleet.cli import add_fleet
    except ImportError:
        return
    add_fleet(sub)


def _sandbox() -> ModuleType:
    from .sandbox import commands

    return commands


# --- plumbing --------------------------------------------------------------------------


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _strip_dashdash(argv: list[str]) -> list[str]:
    return argv[1:] if argv[:1] == ["--"] else argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="integrator",
        description="Run small Python web services on plain Linux hosts: a venv, gunicorn under a hardened "
        "socket-activated systemd unit, nginx with TLS in front. Offline bundles, releases, rollback.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"integrator {__version__}")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--json-lines", action="store_true", help=JSON_LINES_HELP)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for add in (
        _add_new,
        _add_clone,
        _add_init,
        _add_render,
        _add_plan,
        _add_bundle,
        _add_verify,
        _add_deploy,
    ):
        add(sub)
    _add_host_verbs(sub)
    _add_sandbox(sub)
    _add_fleet(sub)
    _accept_json_anywhere(sub)
    return parser


def _accept_json_anywhere(sub: argparse._SubParsersAction) -> None:
    """Let `--json` follow the verb too (`integrator status --json`), as people type it."""
    for parser in sub.choices.values():
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument(
            "--json-lines", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_json_anywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the only place user errors become messages and exit codes."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # bare `integrator`: what it can do, not an error about a missing argument
        parser.print_help()
        return 0
    ns = parser.parse_args(args)
    as_json, json_lines = bool(getattr(ns, "json", False)), bool(getattr(ns, "json_lines", False))
    sink = json_lines_sink() if json_lines else None if as_json else text_sink()
    with reporting(sink):
        return run_and_emit(lambda: ns.func(ns), as_json=as_json, json_lines=json_lines)


if __name__ == "__main__":
    sys.exit(main())
