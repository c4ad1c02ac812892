"""The host's command lines: a bundle's own `sudo python3 shop-1.2.0.pyz VERB` and the host tool
that runs a verb sent from another machine (`integrator VERB --ssh/--host`) (HOST-SIDE).

Both are built from the one table of verbs (catalog_host.py) and forward to host/verbs.py, acting on
this machine only. In a bundle, the bundle is the file being run and a left-out service name is
its own; the host tool gets everything in its argv (`verbtable.tool_argv`). It lives in host/
because it is host code: the bundle's zip runs it (zipapp.MAIN_PY), and bundle/ never imports host/.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..catalog_host import HOST_VERBS
from ..errors import UsageError
from ..result import Result, run_command_line
from ..verbtable import BUNDLE, TOOL, VERB_KEY, add_output_flags, add_verbs, parse, values
from .system import System


def bundle_path() -> Path:
    """The .pyz being run: `python3 x.pyz` puts its path in sys.argv[0] (and sys.path[0])."""
    for candidate in (sys.argv[0], sys.path[0] if sys.path else ""):
        if candidate and zipfile.is_zipfile(candidate):
            return Path(candidate).resolve()
    raise UsageError("run this as `python3 BUNDLE.pyz VERB`: the bundle file was not found")


def build_parser(prog: str, door: str = BUNDLE) -> argparse.ArgumentParser:
    """The parser of a bundle (`door` BUNDLE) or of the host tool (TOOL)."""
    description = {
        BUNDLE: "An integrator bundle: deploys the service it carries on this machine, offline. "
        "Run as root: sudo python3 BUNDLE.pyz deploy",
        TOOL: "integrator's host tool: runs one verb on this machine for `integrator VERB --ssh/--host`.",
    }[door]
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"integrator {__version__}")
    add_output_flags(parser)
    add_verbs(parser.add_subparsers(dest="verb", required=True, metavar="COMMAND"), HOST_VERBS, door)
    return parser


def forward(ns: argparse.Namespace, door: str, bundle: Path | None) -> Result:
    """Call the verb's host handler with this machine and its typed values; in a bundle, the
    bundle itself and its service fill in what was left out."""
    verb = getattr(ns, VERB_KEY)
    own = None if bundle is None else lambda: _own_name(bundle)
    kwargs = values(verb, ns, door, own_name=own)
    if bundle is not None and verb.own_bundle:
        kwargs[verb.own_bundle] = bundle
    result: Result = verb.call(door, kwargs, System())
    return result


def _own_name(bundle: Path) -> str:
    from ..bundle.manifest import read_manifest_unverified

    return read_manifest_unverified(bundle).name


def main(argv: Sequence[str] | None = None, bundle: Path | None = None) -> int:
    """Entry point of a bundle's `__main__.py`: the only place user errors become messages and exit codes."""
    prog = Path(sys.argv[0]).name if bundle is None else bundle.name
    ns = build_parser(f"python3 {prog}").parse_args(argv)
    return run_command_line(lambda: forward(ns, BUNDLE, bundle or bundle_path()), ns)


def tool_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the host tool (targets/transport.py TOOL_MAIN), run by host/stager.py."""
    args = sys.argv[1:] if argv is None else argv
    ns = parse(build_parser("integrator-host", TOOL), HOST_VERBS, args)
    return run_command_line(lambda: forward(ns, TOOL, None), ns)
