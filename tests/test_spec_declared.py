"""The spec is declared once (spec/model.py); schema, defaults, parsing, JSON, the TOML writer
and the template's comment are derived from it. These walk the declarations, so a field added
in one place is covered here without touching this file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from integrator.errors import SpecError
from integrator.project.metadata import parse_toml
from integrator.spec import ServiceSpec, codec, dump_spec_toml, parse_spec, spec_comment
from integrator.spec.checks import check_values
from integrator.spec.declare import Key, entries, entry_table, required, setting, table, tables

MINIMAL = {"service": {"name": "shop", "version": "1.2.0", "entry": "shop:create_app()"}}
TABLES = tables(ServiceSpec)
KEYS = [key for t in TABLES for key in t.keys]


def test_every_field_is_declared_with_a_kind_a_help_and_a_place_in_the_comment() -> None:
    comment = spec_comment("SHOP")
    assert [t.name for t in TABLES] == list(ServiceSpec.__dataclass_fields__)
    for t in TABLES:
        entry = comment.split(f"# [{t.name}]", 1)[1].split("\n# [", 1)[0]
        for key in t.keys:
            assert key.help and "\n" not in key.help, key.label
            assert key.free or key.name in entry, f"{key.label}: not named in the table's comment"


def test_every_declared_key_is_accepted_written_and_defaulted() -> None:
    """Given explicitly at its default, each key parses to the same spec as leaving it out, and
    the TOML writer and JSON carry it."""
    spec = parse_spec(MINIMAL)
    text, data = dump_spec_toml(spec), spec.to_dict()
    for key in KEYS:
        if key.free or key.is_required:
            continue
        value = list(key.default) if key.kind is list else key.default
        if value is not None:
            explicit = {**MINIMAL, key.table: {**MINIMAL.get(key.table, {}), key.name: value}}
            assert parse_spec(explicit) == spec, key.label
            assert f"\n{key.name} = " in text, key.label
        assert key.name in data[key.table], key.label
        with pytest.raises(SpecError, match=rf"unknown key \[{key.table}\] {key.name}x"):
            parse_spec({**MINIMAL, key.table: {**MINIMAL.get(key.table, {}), f"{key.name}x": value}})


# --- random valid specs round-trip through TOML and JSON ----------------------------------------

# Valid values for texts whose rules a declaration does not carry (patterns); any other key draws
# from its declaration: bounds, choices, or its default.
TEXTS: dict[str, list[Any]] = {
    "[service] name": ["shop", "order_tracker"],
    "[service] version": ["1.2.0", "2.0rc1"],
    "[service] entry": ["shop:app", "shop.wsgi:create_app()"],
    "[service] description": ["", 'Shop: 100% "quoted" \\ back'],
    "[http] server_names": [[], ["shop.example"], ["*.shop.example", "_"]],
    "[http] health_path": ["/healthz", "/up?x=1"],
    "[http] max_body": ["10m", "1g", "512"],
    "[secrets] files": [[], ["db_password", "api.key"]],
    "[limits] memory_max": ["", "1G"],
    "[limits] cpu_quota": ["", "50%"],
    "[deploy] release": [[], ["flask", "--app", "shop:create_app", "db", "upgrade"], ["/usr/bin/true"]],
    "[package] include": [[], ["instance/", "data/*.json"]],
    "[package] exclude": [[], ["*.sqlite3"]],
    "[package] build": [[], ["python", "manage.py", "collectstatic", "--noinput"], ["/usr/bin/make"]],
}
# Free tables: names (and values) each table accepts, so most drawn specs are valid ones.
FREE_KEYS = {"env": ["A", "SHOP_X", "b_2"], "static": ["/static/", "/media/files/"]}
FREE_VALUES = {"env": st.text(max_size=20), "static": st.sampled_from(["static", "web/assets"])}
# Tables of named tables ([processes.NAME]): entry names, and texts for their keys by key name.
ENTRY_NAMES = {"processes": ["worker", "mail_2"], "timers": ["prune", "report"]}
ENTRY_TEXTS: dict[str, list[Any]] = {
    "command": [["python", "-m", "shop.worker"], ["/usr/bin/env", "a b", '100% "$HOME" \\ x']],
    "on_calendar": ["daily", "*:*:0/5", "Mon..Fri 03:00 UTC", "*-*-01 00:00:00"],
}
TLS = [{}, {"mode": "local-ca"}, {"mode": "provided", "cert": "/etc/pki/a.crt", "key": "/etc/pki/a.key"}]


def _values(key: Key) -> st.SearchStrategy[Any]:
    if key.label in TEXTS:
        return st.sampled_from(TEXTS[key.label])
    if key.choices:
        return st.sampled_from(key.choices)
    if key.kind is bool:
        return st.booleans()
    if key.kind is int and key.low is not None and key.high is not None:
        return st.integers(key.low, key.high)
    return st.just(list(key.default) if isinstance(key.default, tuple) else key.default)  # TOML has lists


@st.composite
def _entry(draw: st.DrawFn, entry: Any) -> dict[str, Any]:
    values = {
        k.name: st.sampled_from(ENTRY_TEXTS[k.name]) if k.name in ENTRY_TEXTS else _values(k)
        for k in entry.keys
    }
    return {k.name: draw(values[k.name]) for k in entry.keys if k.is_required or draw(st.booleans())}


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for t in TABLES:
        if t.name == "tls":
            data["tls"] = dict(draw(st.sampled_from(TLS)))
        elif t.free and t.free.entry:
            names = draw(st.lists(st.sampled_from(ENTRY_NAMES[t.name]), unique=True, max_size=2))
            data[t.name] = {name: draw(_entry(entry_table(t.free, name))) for name in names}
        elif t.free:
            data[t.name] = draw(st.dictionaries(st.sampled_from(FREE_KEYS[t.name]), FREE_VALUES[t.name]))
        else:
            data[t.name] = {k.name: draw(_values(k)) for k in t.keys if k.is_required or draw(st.booleans())}
    return data


def _valid(data: dict[str, Any]) -> ServiceSpec:
    try:
        return parse_spec(data)
    except SpecError:
        assume(False)
        raise


@settings(max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(shapes())
def test_random_valid_specs_round_trip_through_toml_and_json(data: dict[str, Any]) -> None:
    spec = _valid(data)
    again = parse_spec(parse_toml(dump_spec_toml(spec), source="service.toml"))
    assert again == spec
    assert dump_spec_toml(again) == dump_spec_toml(spec)
    assert ServiceSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


# --- the flat spec.json of releases deployed by older integrators -------------------------------

OLD_FLAT: dict[str, Any] = {
    "name": "shop",
    "version": "1.2.0",
    "entry": "shop:create_app()",
    "description": "Shop",
    "workers": 3,
    "threads": 4,
    "timeout": 30,
    "graceful_timeout": 20,
    "server_names": ["shop.example"],
    "default_server": True,
    "http_port": 8080,
    "https_port": 8443,
    "health_path": "/up",
    "max_body": "10m",
    "hsts": False,
    "tls": {"mode": "provided", "cert": "/etc/pki/s.crt", "key": "/etc/pki/s.key"},
    "env": {"SHOP_GREETING": "hi"},
    "secrets": ["db_password"],
    "limits": {"memory_max": "1G", "cpu_quota": "", "tasks_max": 64},
    "network": "outbound",
    "memory_deny_write_execute": False,
    "keep_releases": 7,
}


def test_the_old_flat_spec_json_is_read_and_checked_as_strictly() -> None:
    spec = ServiceSpec.from_dict(OLD_FLAT)
    assert (spec.name, spec.server.workers, spec.http.https_port, spec.tls.cert) == (
        "shop", 3, 8443, "/etc/pki/s.crt",
    )  # fmt: skip
    assert (spec.env.vars, spec.secrets.files, spec.limits.tasks_max) == (
        (("SHOP_GREETING", "hi"),), ("db_password",), 64,
    )  # fmt: skip
    assert (spec.security.network, spec.security.memory_deny_write_execute, spec.deploy.keep_releases) == (
        "outbound", False, 7,
    )  # fmt: skip
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    without = {k: v for k, v in OLD_FLAT.items() if k != "workers"}
    bad: list[tuple[dict[str, Any], str]] = [
        (without, r"spec\.json: workers is missing"),
        ({**OLD_FLAT, "evil": 1}, r"spec\.json: unknown key 'evil'"),
        ({**OLD_FLAT, "secrets": {}}, r"spec\.json: secrets must be a list"),
        ({**OLD_FLAT, "tls": {"mode": "self-signed"}}, r"spec\.json: tls\.cert is missing"),
        ({**OLD_FLAT, "limits": {**OLD_FLAT["limits"], "x": 1}}, r"spec\.json: unknown key limits\.'x'"),
        ({**OLD_FLAT, "entry": "shop:app\n"}, r"spec\.json: \[service\] entry"),
        ({**OLD_FLAT, "workers": True}, r"spec\.json: \[server\] workers must be an integer"),
        ({**OLD_FLAT, "keep_releases": 1}, r"spec\.json: \[deploy\] keep_releases must be between 2 and 100"),
        ({**OLD_FLAT, "env": {"PATH": "/x"}}, r"spec\.json: \[env\] PATH is set by integrator itself"),
    ]
    for data, message in bad:
        with pytest.raises(SpecError, match=message):
            ServiceSpec.from_dict(data)


# --- adding a table or a field is one declaration -----------------------------------------------


@dataclass(frozen=True)
class Extra:
    colour: str = setting("blue", "a colour", choices=("blue", "red"))
    count: int = setting(3, "how many", low=1, high=9)
    tags: tuple[str, ...] = setting((), "free words")


@dataclass(frozen=True)
class Grown(ServiceSpec):
    extra: Extra = table(Extra, "colour and count,\ntags")


def _grown(data: dict[str, Any]) -> Grown:
    spec: Grown = codec.from_shape(Grown, data, "service.toml")
    check_values(spec, "service.toml")
    return spec


def test_a_declared_table_gets_schema_defaults_checks_toml_json_and_comment() -> None:
    spec = _grown(MINIMAL)
    assert spec.extra == Extra()
    assert _grown({**MINIMAL, "extra": {"colour": "red", "tags": ["a"]}}).extra == Extra("red", 3, ("a",))
    for extra, message in (
        ({"color": "red"}, r"unknown key \[extra\] color \(known: colour, count, tags\)"),
        ({"colour": "green"}, r"\[extra\] colour must be one of blue, red"),
        ({"count": 10}, r"\[extra\] count must be between 1 and 9, got 10"),
        ({"count": "3"}, r"\[extra\] count must be an integer"),
        ({"colour": "blue\r"}, r"\[extra\] colour .* control character"),
    ):
        with pytest.raises(SpecError, match=message):
            _grown({**MINIMAL, "extra": extra})
    text = codec.dump_toml(spec)
    assert text.endswith('[extra]\ncolour = "blue"\ncount = 3\ntags = []\n')
    assert _grown(parse_toml(text, source="service.toml")) == spec
    data = codec.to_dict(spec)
    assert data["extra"] == {"colour": "blue", "count": 3, "tags": []}
    assert _grown(codec.json_to_shape(Grown, json.loads(json.dumps(data)), "spec.json")) == spec
    # spec.json of a release deployed before the table existed: its defaults, checked
    older = {k: v for k, v in data.items() if k != "extra"}
    assert _grown(codec.json_to_shape(Grown, older, "spec.json")) == spec
    assert "# [extra]     colour and count,\n#             tags\n" in codec.comment(Grown, "SHOP")


@dataclass(frozen=True)
class Job:
    argv: tuple[str, ...] = required("what it runs")
    every: int = setting(5, "minutes", low=1, high=60)


@dataclass(frozen=True)
class Jobs:
    named: tuple[tuple[str, Job], ...] = entries(Job, "[jobs.NAME] tables")


@dataclass(frozen=True)
class WithJobs(ServiceSpec):
    jobs: Jobs = table(Jobs, "argv, every")


def test_a_declared_table_of_named_tables_gets_schema_defaults_checks_toml_and_json() -> None:
    """[jobs.NAME]: each entry checked, defaulted, written and read back like a table of its own."""

    def parse(data: dict[str, Any]) -> WithJobs:
        spec: WithJobs = codec.from_shape(WithJobs, data, "service.toml")
        check_values(spec, "service.toml")
        return spec

    spec = parse({**MINIMAL, "jobs": {"b": {"argv": ["x"]}, "a": {"argv": ["y", "z"], "every": 7}}})
    assert spec.jobs.named == (("a", Job(("y", "z"), 7)), ("b", Job(("x",), 5)))
    assert parse(MINIMAL).jobs.named == ()
    for jobs, message in (
        ({"a": {"argv": ["x"], "evry": 1}}, r"unknown key \[jobs\.a\] evry \(known: argv, every\)"),
        ({"a": {}}, r"\[jobs\.a\] argv is required"),
        ({"a": {"argv": ["x"], "every": 61}}, r"\[jobs\.a\] every must be between 1 and 60, got 61"),
        ({"a": {"argv": "x"}}, r"\[jobs\.a\] argv must be a list"),
        ({"a": ["x"]}, r"\[jobs\] a must be a table"),
        ({"a": {"argv": ["x\r"]}}, r"\[jobs\.a\] argv .* control character"),
        ({"a\n": {"argv": ["x"]}}, r"\[jobs\] .* control character"),
    ):
        with pytest.raises(SpecError, match=message):
            parse({**MINIMAL, "jobs": jobs})
    text = codec.dump_toml(spec)
    assert text.endswith('[jobs.a]\nargv = ["y", "z"]\nevery = 7\n\n[jobs.b]\nargv = ["x"]\nevery = 5\n')
    assert parse(parse_toml(text, source="service.toml")) == spec
    data = codec.to_dict(spec)
    assert data["jobs"] == {"a": {"argv": ["y", "z"], "every": 7}, "b": {"argv": ["x"], "every": 5}}
    assert parse(codec.json_to_shape(WithJobs, json.loads(json.dumps(data)), "spec.json")) == spec
    older = {k: v for k, v in data.items() if k != "jobs"}
    assert parse(codec.json_to_shape(WithJobs, older, "spec.json")).jobs.named == ()


def test_the_readme_service_toml_is_valid_and_shows_every_declared_key() -> None:
    """README.md's service.toml is the reference people read: it parses, and names every key."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## service.toml\n\n```toml\n", 1)[1].split("```", 1)[0]
    data = parse_toml(block, source="README.md")
    parse_spec(data, source="README.md")
    for key in KEYS:
        assert key.table in data, f"README.md's service.toml has no [{key.table}]"
        if not (key.free or key.optional):
            assert key.name in data[key.table], f"README.md's service.toml does not show {key.label}"
        for name, entry in data[key.table].items() if key.entry else ():
            for sub in entry_table(key, name).keys:
                assert sub.name in entry, f"README.md's service.toml does not show {sub.label}"
