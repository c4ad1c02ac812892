"""The bundle's own command line: `sudo python3 shop-1.2.0.pyz deploy|status|...` (HOST-SIDE).

It parses and forwards, like `integrator.cli`, acting on this machine only (host/verbs.py): the
bundle is the file being run. Name-taking verbs default to the bundle's own service. It lives in
host/ because it is host code: the bundle's zip runs it (zipapp.MAIN_PY), and bundle/ never
imports host/. Handlers import what they use, so `verify` loads no deploy engine.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..result import Result, run_and_emit
from .journal import SOURCE_HELP, SOURCES
from .system import System

Handler = Callable[[argparse.Namespace, Path], Result]


def bundle_path() -> Path:
    """The .pyz being run: `python3 x.pyz` puts its path in sys.argv[0] (and sys.path[0])."""
    for candidate in (sys.argv[0], sys.path[0] if sys.path else ""):
        if candidate and zipfile.is_zipfile(candidate):
            return Path(candidate).resolve()
    raise UsageError("run this as `python3 BUNDLE.pyz VERB`: the bundle file was not found")


def _own_name(bundle: Path) -> str:
    from ..bundle.manifest import read_manifest_unverified

    return read_manifest_unverified(bundle).name


def _here() -> System:
    return System()


def _name(ns: argparse.Namespace, bundle: Path) -> str:
    """NAME as given (even ""; verbs.checked_name checks it like service.toml), else the bundle's."""
    return str(ns.name) if ns.name is not None else _own_name(bundle)


def _name_or_all(ns: argparse.Namespace, bundle: Path) -> str | None:
    return None if ns.all else _name(ns, bundle)


# --- handlers: one line each, typed values only ---------------------------------------


def _verify(ns: argparse.Namespace, bundle: Path) -> Result:
    from ..bundle.verify import verify_bundle

    return verify_bundle(bundle, allowed_signers=ns.allowed_signers)


def _deploy(ns: argparse.Namespace, bundle: Path, plan_only: bool = False) -> Result:
    from .secrets import parse_secret_args
    from .verbs import deploy

    if ns.allowed_signers is not None:  # refuse before touching anything
        from ..bundle.verify import verify_bundle

        verify_bundle(bundle, allowed_signers=ns.allowed_signers)
    return deploy(
        _here(),
        bundle,
        plan_only=plan_only or ns.plan,
        secrets=parse_secret_args(ns.secret),
        allowed_signers=ns.allowed_signers,  # checked again on the private copy that is deployed
        release_id=ns.release_id,
    )


def _plan(ns: argparse.Namespace, bundle: Path) -> Result:
    return _deploy(ns, bundle, plan_only=True)


def _lb(ns: argparse.Namespace, bundle: Path) -> Result:
    from ..render.lb import Backends
    from .lb import lb_sync

    backends = Backends(tuple(ns.backend), frozenset(ns.down))
    return lb_sync(_here(), bundle, backends, drain_s=ns.drain_timeout, dry_run=ns.plan)


def _probe(ns: argparse.Namespace, bundle: Path) -> Result:
    from .lb import lb_probe

    return lb_probe(_here(), bundle, ns.address)


def _status(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import status

    return status(_here(), _name_or_all(ns, bundle))


def _list(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import list_services

    return list_services(_here(), _name_or_all(ns, bundle))


def _logs(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import logs

    return logs(_here(), _name(ns, bundle), ns.source, follow=ns.follow, since=ns.since, lines=ns.lines)


def _rollback(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import rollback

    return rollback(_here(), _name(ns, bundle), to=ns.to)


def _uninstall(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import uninstall

    return uninstall(_here(), _name(ns, bundle), purge=ns.purge)


def _doctor(ns: argparse.Namespace, bundle: Path) -> Result:
    from .verbs import doctor

    return doctor(_here(), _name_or_all(ns, bundle), bundle=bundle)


# --- parser ------------------------------------------------------------------------------


def _signers(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--allowed-signers", type=Path, metavar="FILE", help=help_text)


def _deploy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--secret", action="append", default=[], metavar="NAME=FILE", help="a secret named in the spec"
    )
    _signers(p, "refuse to deploy unless signed by a key in FILE")
    p.add_argument("--release-id", metavar="ID", help="the new release's id (a fleet's, chosen once)")


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="An integrator bundle: deploys the service it carries on this machine, offline. "
        "Run as root: sudo python3 BUNDLE.pyz deploy",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    p = sub.add_parser("verify", help="check every file of this bundle against its manifest")
    _signers(p, "also require a valid signature by a key in FILE (principal 'integrator')")
    p.set_defaults(func=_verify)
    p = sub.add_parser("plan", help="show what a deploy would change; changes nothing")
    _deploy_args(p)
    p.set_defaults(func=_plan, plan=True)
    p = sub.add_parser("deploy", help="install this bundle as a new release, health-gated, or roll back")
    _deploy_args(p)
    p.add_argument("--plan", action="store_true", help="show what would change and change nothing")
    p.set_defaults(func=_deploy)
    p = sub.add_parser("lb", help="a fleet's load balancer on this host: the site routes to --backend hosts")
    p.add_argument("--backend", action="append", default=[], metavar="ADDRESS", help="an app host (repeat)")
    p.add_argument("--down", action="append", default=[], metavar="ADDRESS", help="a backend drained")
    p.add_argument(
        "--drain-timeout", type=float, default=30.0, metavar="S", help="wait for in-flight requests"
    )
    p.add_argument("--plan", action="store_true", help="show what would change and change nothing")
    p.set_defaults(func=_lb)
    p = sub.add_parser("probe", help="health-check one app host directly, as a load balancer reaches it")
    p.add_argument("address", help="the app host's address")
    p.set_defaults(func=_probe)
    for verb, func, help_text in (
        ("status", _status, "the service's state"),
        ("list", _list, "the service's releases (--all: every service)"),
        ("doctor", _doctor, "check this host before a deploy of this bundle, and the service after"),
    ):
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("name", nargs="?", help="service name (default: this bundle's)")
        p.add_argument("--all", action="store_true", help="every service integrator manages here")
        p.set_defaults(func=func)
    p = _named(sub, "logs", _logs, "the service's journal")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("--since", help="journalctl --since, e.g. '1 hour ago'")
    p.add_argument("-n", "--lines", type=int, default=100, help="how many lines (default: 100)")
    p.add_argument("--source", choices=SOURCES, default="all", help=SOURCE_HELP)
    p = _named(sub, "rollback", _rollback, "go back to the previous good release")
    p.add_argument("--to", metavar="ID", help="a release id from `list`")
    p = _named(sub, "uninstall", _uninstall, "remove the service from this host")
    p.add_argument("--purge", action="store_true", help="also remove its data, secrets and certificates")
    for verb_parser in sub.choices.values():
        # as people type it, and as `integrator` accepts it: `status --json`, `deploy --local`
        verb_parser.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        verb_parser.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    return parser


def _named(
    sub: argparse._SubParsersAction, verb: str, func: Handler, help_text: str
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(verb, help=help_text)
    p.add_argument("name", nargs="?", help="service name (default: this bundle's)")
    p.set_defaults(func=func)
    return p


def main(argv: Sequence[str] | None = None, bundle: Path | None = None) -> int:
    """Entry point of `__main__.py`: the only place user errors become messages and exit codes."""
    prog = Path(sys.argv[0]).name if bundle is None else bundle.name
    ns = build_parser(f"python3 {prog}").parse_args(argv)
    return run_and_emit(lambda: ns.func(ns, bundle or bundle_path()), as_json=ns.json)
