"""Every verb, declared once: its arguments, help texts, handlers and where it may run (HOST-SIDE).

Three command lines come from `VERBS` (the entries are in `catalog.py` and `catalog_host.py`): the operator's
`integrator` (cli.py), a bundle's own `python3 BUNDLE.pyz VERB` and the host tool that runs a
verb on a remote host (both host/pyzmain.py), plus the argv sent to that tool (`tool_argv`), so
help, options and meaning cannot drift apart. Handlers are named as "module:function" and imported
when called: `--help` loads nothing else, and this module stays standard library only.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .errors import UsageError

CLI, BUNDLE, TOOL = "cli", "bundle", "tool"  # the front doors
HOST_DOORS = (CLI, BUNDLE, TOOL)  # a host verb: here, in a bundle, and on a remote host
VERB_KEY = "verb_"  # the namespace attribute holding the chosen Verb

# A tool argument: a literal, or (prefix, upload name) for prefix + that upload's staged path.
Arg = Union[str, tuple[str, str]]


@dataclass(frozen=True)
class Opt:
    """One argument: `flags` ("name" is a positional, "-n", "--lines" an option) and its help.

    kind: str, int, float, path, flag, choice, list (repeatable), rest (everything after), words
    (one or more positional words, e.g. `set NAME KEY=VALUE...`), argv
    (a command: everything after the first `--`, see `parse`), secrets (repeatable NAME=FILE, a
    {name: Path} for the handler). `convert` ("module:function") turns the parsed value into the
    handler's, inside the error handling (a UsageError is one line). `upload`: a local file the
    tool argv stages on the host; `send=False`: used on the operator's side only, never sent to a host."""

    flags: tuple[str, ...]
    help: str
    kind: str = "str"
    dest: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    optional: bool = False
    required: bool = False
    convert: str = ""
    upload: bool = False
    send: bool = True

    @property
    def key(self) -> str:
        """The handler's keyword."""
        return self.dest or self.flags[-1].lstrip("-").replace("-", "_")

    @property
    def attr(self) -> str:
        """The namespace attribute (argparse names a positional after itself)."""
        return self.flags[0] if self.positional else self.key

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")


@dataclass(frozen=True)
class Verb:
    """One verb. `service`: "one" (NAME; in a bundle its own by default), "any" ([NAME] [--all]:
    without a name every service; in a bundle its own), "" (none). `cli` is the operator's handler
    (`targets/commands.py` for host verbs, called with `target=`), `host` the handler on a host
    (`host/verbs.py`, called with the System first). `own_bundle`: in a bundle, the keyword that
    gets the running bundle (its option is not offered there). `verbs`: a group's sub-verbs.
    `takes` ("module:Class"): the handlers take the values as one object of that type, built once
    (`call`), keyword `options`, instead of one keyword each."""

    name: str
    help: str
    description: str
    cli: str = ""
    host: str = ""
    opts: tuple[Opt, ...] = ()
    service: str = ""
    doors: tuple[str, ...] = (CLI,)
    own_bundle: str = ""
    verbs: tuple[Verb, ...] = ()
    takes: str = ""

    def options(self, door: str) -> tuple[Opt, ...]:
        """The arguments this verb takes at `door`, the service name first."""
        own: tuple[Opt, ...] = ()
        if self.service:
            own = (NAME_OWN,) if door == BUNDLE else (NAME,) if self.service == "one" else (NAME_ANY,)
        extra = (ALL,) if self.service == "any" else ()
        kept = tuple(o for o in self.opts if not (door == BUNDLE and o.key == self.own_bundle))
        return own + kept + extra

    def handler(self, door: str) -> Callable[..., Any]:
        handler: Callable[..., Any] = _load(self.cli if door == CLI else self.host)
        return handler

    def call(self, door: str, given: Mapping[str, Any], *lead: Any, **extra: Any) -> Any:
        """The handler at `door` called with `lead` (a host handler's System), the values `given`
        (as `values` returns them; one `takes` object if the verb has one) and `extra` (`target=`)."""
        kwargs = dict(given)
        if self.takes:
            kwargs = {"options": _load(self.takes)(**kwargs)}
        return self.handler(door)(*lead, **kwargs, **extra)


def _load(name: str) -> Any:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


NAME = Opt(("name",), "service name")
NAME_ANY = Opt(("name",), "service name (default: every service)", optional=True)
NAME_OWN = Opt(("name",), "service name (default: this bundle's)", optional=True)
ALL = Opt(("--all",), "every service integrator manages on the host", kind="flag", dest="all_services")
# where a host verb acts, at the operator's door only; a bundle and the host tool act here
TARGET = (
    Opt(("--host",), "a sandbox host made by `integrator sandbox create`", metavar="SANDBOX", send=False),
    Opt(("--local",), "this machine (the default)", kind="flag", send=False),
    Opt(("--ssh",), "a host via ssh (BatchMode; -F $INTEGRATOR_SSH_CONFIG)", metavar="USER@HOST", send=False),
)


OUTPUT_FLAGS = {
    "--json": "print one JSON object instead of text",
    "--json-lines": "print each step as one JSON object per line, then the result as the last line",
}


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """How a command line prints (result.py `run_command_line`): text, --json or --json-lines."""
    for flag, help_text in OUTPUT_FLAGS.items():
        parser.add_argument(flag, action="store_true", help=help_text)


def parse(parser: argparse.ArgumentParser, verbs: Sequence[Verb], args: Sequence[str]) -> argparse.Namespace:
    """Parse a command line. For a verb with an `argv` option, everything after the first `--` is
    that command, set apart first: argparse cannot take options between a positional and a
    `nargs="*"` one (`run NAME --host H -- CMD`)."""
    args = list(args)
    verb_name = next((a for a in args if not a.startswith("-")), None)
    verb = next((v for v in verbs if v.name == verb_name), None)
    command = next((o for o in verb.opts if o.kind == "argv"), None) if verb else None
    if command is None or "--" not in args:
        return parser.parse_args(args)
    cut = args.index("--")
    ns = parser.parse_args(args[:cut])
    setattr(ns, command.attr, args[cut + 1 :])
    return ns


def in_door(verbs: Sequence[Verb], door: str) -> list[Verb]:
    return [v for v in verbs if door in v.doors]


def add_verbs(sub: argparse._SubParsersAction, verbs: Sequence[Verb], door: str) -> None:
    """One sub-parser per verb open at `door`, from its declaration alone."""
    for verb in in_door(verbs, door):
        p = sub.add_parser(verb.name, help=verb.help, description=verb.description)
        # as people type it: `integrator status --json` as well as `integrator --json status`
        for flag in OUTPUT_FLAGS:
            p.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if verb.verbs:
            add_verbs(
                p.add_subparsers(dest=f"{verb.name}_verb", required=True, metavar="VERB"), verb.verbs, door
            )
            continue
        p.set_defaults(**{VERB_KEY: verb})
        for opt in verb.options(door):
            _add(p, opt, door)
        if TOOL in verb.doors or door == BUNDLE:
            _add_target(p, door)


def _add(p: argparse.ArgumentParser | Any, opt: Opt, door: str) -> None:
    kw: dict[str, Any] = {"help": opt.help}
    if not opt.positional:
        kw["dest"] = opt.key
    if opt.metavar or opt.positional:
        kw["metavar"] = opt.metavar or opt.flags[0]
    if opt.kind == "flag":
        kw["action"] = "store_false" if opt.default is True else "store_true"
    elif opt.kind in ("list", "secrets"):
        kw.update(action="append", default=[])
    elif opt.kind == "rest":
        kw["nargs"] = argparse.REMAINDER
    elif opt.kind == "argv":
        kw["nargs"] = "*"
    elif opt.kind == "words":
        kw["nargs"] = "+"
    else:
        kw["type"] = {"int": int, "float": float, "path": Path}.get(opt.kind, str)
        kw["default"] = opt.default
        if opt.choices:
            kw["choices"] = opt.choices
        if opt.positional and opt.optional:
            kw["nargs"] = "?"
        if opt.required:
            kw["required"] = True
    p.add_argument(*opt.flags, **kw)


def _add_target(p: argparse.ArgumentParser, door: str) -> None:
    group = p.add_mutually_exclusive_group()
    for opt in TARGET if door == CLI else TARGET[1:2]:  # --local everywhere: it is always this machine
        _add(group, opt, door)


def values(
    verb: Verb, ns: argparse.Namespace, door: str, own_name: Callable[[], str] | None = None
) -> dict[str, Any]:
    """The handler's keyword arguments from a parsed namespace, converted. A service name left out
    is `own_name()` (a bundle's own service) if given and --all is not, else None (every one)."""
    out: dict[str, Any] = {}
    for opt in verb.options(door):
        value = getattr(ns, opt.attr)
        if opt.convert and value is not None:
            value = _load(opt.convert)(value)
        out[opt.key] = value
    every = bool(out.pop("all_services", False))
    if every and out["name"] is not None:
        raise UsageError(f"{verb.name}: give a service name or --all, not both")
    if verb.service and out["name"] is None and not every and own_name is not None:
        out["name"] = own_name()
    return out


def target_args(ns: argparse.Namespace) -> dict[str, Any]:
    return {"host": ns.host, "ssh": ns.ssh}


def tool_argv(verb: Verb, given: Mapping[str, Any], stage: Callable[[Path], str]) -> list[Arg]:
    """The host tool's argv for `verb` with the handler's values `given` (as `values` returns
    them): files to upload become (prefix, name) with name = stage(local path)."""
    argv: list[Arg] = [verb.name]
    rest: list[Arg] = []  # everything after `--`, last
    for opt in verb.options(TOOL):
        value = given.get(opt.key, opt.default)
        if not opt.send or value is None or value is False or value == []:
            continue
        flag = [] if opt.positional else [opt.flags[-1]]
        if opt.kind == "flag":
            argv.append(opt.flags[-1])
        elif opt.kind == "secrets":
            for name, path in sorted(value.items()):
                argv += [*flag, (f"{name}=", stage(Path(path)))]
        elif opt.upload:
            argv += [*flag, ("", stage(Path(value)))]
        elif opt.kind == "list":
            for item in value:
                argv += [*flag, str(item)]
        elif opt.kind == "words":
            argv += [str(item) for item in value]
        elif opt.kind == "argv":
            rest = ["--", *map(str, value)]
        else:
            argv += [*flag, str(value)]
    return argv + rest


def csv(value: str) -> list[str]:
    """`--python 3.9,3.11`: the parts, stripped, empty ones dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def strip_dashdash(argv: list[str]) -> list[str]:
    return argv[1:] if argv[:1] == ["--"] else argv
