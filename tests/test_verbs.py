"""The three command lines built from the one table of verbs (catalog.py) agree.

`integrator` (cli.py), a bundle's own (`python3 BUNDLE.pyz`) and the host tool's (host/pyzmain.py)
offer the same verbs with the same options and help, and the argv sent to a remote host for
every host verb (`verbtable.tool_argv`) parses back, in the host tool's parser, to the values the
operator's command line parsed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from integrator import cli
from integrator.catalog import VERBS
from integrator.host import pyzmain
from integrator.verbtable import BUNDLE, CLI, TOOL, VERB_KEY, Verb, parse, tool_argv, values


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every option string (and positional) of a verb's parser -> its help."""
    out = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        for flag in action.option_strings or [action.dest]:
            out[flag] = str(action.help)
    return out


def _verb_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The one-line help of each verb, as the verb list of `--help` shows it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: str(a.help) for a in action._choices_actions}
    return {}


PARSERS = {CLI: cli.build_parser(), BUNDLE: pyzmain.build_parser("b"), TOOL: pyzmain.build_parser("t", TOOL)}
HOST_VERBS = [v for v in VERBS if TOOL in v.doors]


def test_every_door_offers_exactly_the_verbs_declared_for_it() -> None:
    for door, parser in PARSERS.items():
        assert sorted(_subparsers(parser)) == sorted(v.name for v in VERBS if door in v.doors), door
    # one meaning per name: each declared once, whatever doors it opens at
    names = [v.name for v in VERBS]
    assert len(names) == len(set(names))
    assert {"list", "releases", "deploy"} <= set(_subparsers(PARSERS[TOOL]))
    assert "plan" not in _subparsers(PARSERS[BUNDLE])  # `deploy --plan` there, as everywhere


@pytest.mark.parametrize("verb", [v for v in VERBS if {CLI, BUNDLE} <= set(v.doors)], ids=lambda v: v.name)
def test_a_verb_has_the_same_help_and_options_at_every_door(verb: Verb) -> None:
    doors = [d for d in (CLI, BUNDLE, TOOL) if d in verb.doors]
    parsers = {d: _subparsers(PARSERS[d])[verb.name] for d in doors}
    assert {_verb_help(PARSERS[d])[verb.name] for d in doors} == {verb.help}
    assert {p.description for p in parsers.values()} == {verb.description}
    helps = {d: _help(p) for d, p in parsers.items()}
    # the operator's door adds where to act (--local alone: this machine, at the others); a bundle
    # is the file being run and names its own service
    where = {"--host", "--ssh", "--local"}
    own = {verb.own_bundle} if verb.own_bundle else set()
    assert set(helps[BUNDLE]) - where == set(helps[CLI]) - where - own and "--local" in helps[BUNDLE]
    if TOOL in doors:
        assert set(helps[TOOL]) == set(helps[CLI]) - {"--host", "--ssh"}
    for flag, text in helps[BUNDLE].items():
        if flag != "name":
            assert {h[flag] for h in helps.values() if flag in h} == {text}, flag


def _cli_values(argv: list[str]) -> tuple[Verb, dict[str, Any]]:
    ns = parse(PARSERS[CLI], VERBS, argv)
    verb: Verb = getattr(ns, VERB_KEY)
    return verb, values(verb, ns, CLI)


# every host verb with every option it can send: typed values in, the same values out on the host
REMOTE_CASES = {
    "deploy": [
        "deploy",
        "dist/shop-1.0.pyz",
        "--plan",
        "--sha256",
        "a" * 64,
        "--secret",
        "db=/root/db pw",
        "--release-id",
        "r1",
    ],
    "status": ["status", "shop"],
    "list": ["list"],
    "releases": ["releases", "shop"],
    "logs": ["logs", "shop", "-n", "7", "--since", "1 hour ago", "--source", "app", "--process", "worker"],
    "rollback": ["rollback", "shop", "--to", "20260101T000000Z-abc"],
    "uninstall": ["uninstall", "shop", "--purge"],
    "doctor": ["doctor"],
    "run": ["run", "shop", "--", "python", "-c", "print(1)", "--", "--local", "$HOME"],
    "config": ["config", "set", "shop", "GREETING=hello $HOME 100%", "B=two words"],
    "scale": ["scale", "shop", "workers=4", "threads=2"],
    "secret": ["secret", "set", "shop", "api_key", "--from", "/root/the key"],
}


def test_every_host_verb_has_a_remote_case() -> None:
    assert sorted(REMOTE_CASES) == sorted(v.name for v in HOST_VERBS)


@pytest.mark.parametrize("name", sorted(REMOTE_CASES))
def test_the_remote_argv_parses_back_to_the_same_values_on_the_host(name: str) -> None:
    case = REMOTE_CASES[name]
    cut = case.index("--") if "--" in case else len(case)
    verb, given = _cli_values([*case[:cut], "--ssh", "root@web1", *case[cut:]])
    staged: dict[str, Path] = {}

    def stage(path: Path) -> str:
        staged[f"upload-{len(staged) + 1}"] = path
        return f"upload-{len(staged)}"

    argv = tool_argv(verb, given, stage)
    assert all(isinstance(a, str) or a[1] in staged for a in argv)
    staging = Path("/var/cache/integrator-host/staging/run-x")
    # as host/stager.py tool_argv puts it together on the host
    host_argv = [a if isinstance(a, str) else a[0] + str(staging / a[1]) for a in argv]
    ns = parse(PARSERS[TOOL], HOST_VERBS, ["--json", *host_argv])
    assert getattr(ns, VERB_KEY) is verb
    on_host = values(verb, ns, TOOL)
    where = {path: staging / upload for upload, path in staged.items()}
    sent = {o.key for o in verb.options(TOOL) if o.send}
    expected = {k: _moved(v, where) for k, v in given.items() if k in sent}
    assert {k: v for k, v in on_host.items() if k in sent} == expected
    # what is not sent is the host's own default: the operator's side used it already
    assert all(on_host[o.key] in (None, False, []) for o in verb.options(TOOL) if not o.send)


def _moved(value: Any, where: dict[Path, Path]) -> Any:
    if isinstance(value, Path):
        return where[value]
    if isinstance(value, dict):
        return {k: where[v] for k, v in value.items()}
    return value


def test_names_are_checked_and_resolved_in_one_place(tmp_path: Path) -> None:
    from integrator.errors import UsageError

    ns = PARSERS[BUNDLE].parse_args(["status"])
    assert values(getattr(ns, VERB_KEY), ns, BUNDLE, own_name=lambda: "shop") == {"name": "shop"}
    ns = PARSERS[BUNDLE].parse_args(["status", "--all"])
    assert values(getattr(ns, VERB_KEY), ns, BUNDLE, own_name=lambda: "shop") == {"name": None}
    ns = PARSERS[CLI].parse_args(["doctor", "shop", "--all"])
    with pytest.raises(UsageError, match="doctor: give a service name or --all, not both"):
        values(getattr(ns, VERB_KEY), ns, CLI)
    with pytest.raises(SystemExit):  # one meaning: `list` lists services, `releases NAME` one's releases
        PARSERS[CLI].parse_args(["list", "shop"])


def test_deploy_handlers_get_one_options_value_built_from_the_parsed_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The deploy verb's handlers, operator's and host's, take one frozen DeployOptions, built once
    from the parsed values (`Verb.call`), not the seven keywords each listed again."""
    from integrator.host import verbs
    from integrator.host.deploy_options import DeployOptions
    from integrator.result import Result
    from integrator.targets import commands

    seen: list[tuple[str, DeployOptions]] = []

    def handler(door: str) -> Any:
        def record(*lead: object, options: DeployOptions) -> Result:
            seen.append((door, options))
            return Result()

        return record

    monkeypatch.setattr(commands, "deploy", lambda options, target: handler("cli")(options=options))
    monkeypatch.setattr(verbs, "deploy_here", handler("host"))
    secret = tmp_path / "db"
    argv = [
        "deploy",
        "s.pyz",
        "--plan",
        "--secret",
        f"db={secret}",
        "--release-id",
        "r1",
        "--sha256",
        "a" * 64,
    ]
    assert cli.main(argv) == 0
    assert pyzmain.tool_main(["--json", *argv]) == 0
    expected = DeployOptions(Path("s.pyz"), True, {"db": secret}, None, "a" * 64, "r1")
    assert seen == [("cli", expected), ("host", expected)]
    with pytest.raises(TypeError):  # frozen all the way down
        seen[0][1].secrets["db"] = Path("/etc/shadow")  # type: ignore[index]
