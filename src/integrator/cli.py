"""Command line: parse, forward, print. No logic lives here.

Every verb is declared once, in catalog.py; this builds the `integrator` parser from that table
and forwards the parsed values to the verb's handler (a host verb also gets its `target`). The
handlers are imported when called, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .catalog import VERBS
from .result import Result, run_command_line
from .verbtable import CLI, TOOL, VERB_KEY, add_output_flags, add_verbs, parse, target_args, values

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="integrator",
        description="Run small Python web services on plain Linux hosts: a venv, gunicorn under a hardened "
        "socket-activated systemd unit, nginx with TLS in front. Offline bundles, releases, rollback.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"integrator {__version__}")
    add_output_flags(parser)
    add_verbs(parser.add_subparsers(dest="verb", required=True, metavar="COMMAND"), VERBS, CLI)
    return parser


def forward(ns: argparse.Namespace) -> Result:
    """Call the chosen verb's handler with its typed values (and, for a host verb, the target)."""
    verb = getattr(ns, VERB_KEY)
    given = values(verb, ns, CLI)
    if TOOL not in verb.doors:
        result: Result = verb.call(CLI, given)
        return result
    from .targets.ssh import one_connection
    from .targets.transport import target_from_args

    with one_connection(target_from_args(**target_args(ns))) as target:  # over ssh: one connection
        result = verb.call(CLI, given, target=target)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the only place user errors become messages and exit codes."""
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # bare `integrator`: what it can do, not an error about a missing argument
        parser.print_help()
        return 0
    ns = parse(parser, VERBS, args)
    return run_command_line(lambda: forward(ns), ns)


if __name__ == "__main__":
    sys.exit(main())
