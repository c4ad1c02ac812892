"""`integrator fleet VERB`: the parser of the fleet verbs (build side; cli.py registers it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..result import Result


def _fleet_deploy(ns: argparse.Namespace) -> Result:
    from . import deploy

    return deploy(ns.bundle, ns.inventory, check=ns.check, serial=ns.serial)


def _fleet_plan(ns: argparse.Namespace) -> Result:
    from . import deploy

    return deploy(ns.bundle, ns.inventory, check=True)


def _fleet_simple(ns: argparse.Namespace) -> Result:
    from . import simple

    return simple(ns.fleet_verb, ns.bundle, ns.inventory, to=getattr(ns, "to", None))


def _collection(ns: argparse.Namespace) -> Result:
    from . import build_collection

    return build_collection(ns.out)


def add_fleet(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fleet", help="roll a bundle across app hosts behind an nginx load balancer (Ansible)")
    fs = p.add_subparsers(dest="fleet_verb", required=True, metavar="VERB")
    verbs = (
        ("deploy", _fleet_deploy, "preflight, then one host at a time; a failure rolls the fleet back"),
        ("plan", _fleet_plan, "ansible-playbook --check: a plan on each host, nothing changed"),
        ("rollback", _fleet_simple, "every app host back to the fleet's previous release (or --to ID)"),
        ("status", _fleet_simple, "each app host's release and health, the fleet's last run"),
        ("unlock", _fleet_simple, "remove a fleet lock left by a run that is gone"),
    )
    for verb, func, help_text in verbs:
        f = fs.add_parser(verb, help=help_text, description=help_text)
        f.add_argument("bundle", type=Path, help="the service's NAME-VERSION.pyz on this controller")
        f.add_argument("-i", "--inventory", type=Path, required=True, help="inventory (docs/fleet.md)")
        f.set_defaults(func=func)
        if verb == "deploy":
            f.add_argument("--check", action="store_true", help="same as `fleet plan`")
            f.add_argument("--serial", type=int, metavar="N", help="hosts per batch (default 1)")
        if verb == "rollback":
            f.add_argument("--to", metavar="ID", help="a release id (default: the last run's previous)")
    c = fs.add_parser("collection", help="build the integrator.fleet collection as an offline tarball")
    c.add_argument("--out", type=Path, default=Path("dist"), help="directory for the tarball (default: dist)")
    c.set_defaults(func=_collection)
