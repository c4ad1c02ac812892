"""Every text in a spec is validated whole: refused with a line naming the field, or rendered
into files whose directives are exactly those a benign value gives (issue 8, finding 1).

The property test feeds arbitrary strings (control characters, CR, LF, backslashes, `%`,
quotes, `;{}$`, any Unicode) into each text field in turn and reads the rendered files with
the models in config_parse.py (split at LF *and* CR, continuations joined, as systemd and
nginx read them). It is derandomized: a failure reproduces on every run.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrator import cli
from integrator.errors import SpecError, UsageError
from integrator.layout import Layout
from integrator.render import render_all
from integrator.spec import ServiceSpec, parse_spec

from .config_parse import Directive, directives
from .render_checks import (
    RootedLayout,
    need_tool,
    nginx_prefix,
    nginx_test,
    nginx_version,
    run,
    self_signed,
    systemd_root,
    unit_paths,
)

# Markers: benign values that appear nowhere else, so "where the value lands" is "where the
# marker was" in the benign rendering.
BASE: dict[str, dict[str, Any]] = {
    "service": {
        "name": "zq",
        "version": "7.7.7",
        "entry": "entrymark.wsgi:create_app()",
        "description": "DESCMARK",
    },
    "http": {"server_names": ["srvmark.example"], "health_path": "/healthmark", "max_body": "66m"},
    "tls": {"mode": "provided", "cert": "/certmark/c.pem", "key": "/keymark/k.pem"},
    "env": {"ENVKEYMARK": "ENVVALMARK"},
    "secrets": {"files": ["secmark"]},
    "limits": {"memory_max": "777M", "cpu_quota": "555%"},
    "security": {"network": "outbound"},
}
RELEASE = "RELMARK1"

# The characters that broke, or could break, a config file; mixed with any Unicode character
# (surrogates included: JSON can carry them to the host).
HOSTILE = list("\r\n\t\x00\x0b\x0c\x1b\x7f\x85\u2028\u2029\u202e\ufeff\\%\"';{}$#=[] */.:-_+@")
FREE_TEXT = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))
ANY_CHAR = st.one_of(st.sampled_from(HOSTILE), st.characters(exclude_categories=()))


@dataclass(frozen=True)
class Field:
    """A text field: its label in error messages, how to set it, and its benign marker."""

    label: str
    set: Callable[[dict[str, Any], str], None]
    marker: str
    # Values with a meaning of their own ("" switches a setting off, `_` and `*.` are nginx's
    # special names): they render other lines, which are checked for syntax only.
    special: Callable[[str], bool] = lambda value: False


def _put(table: str, key: str) -> Callable[[dict[str, Any], str], None]:
    def put(data: dict[str, Any], value: str) -> None:
        data[table][key] = value

    return put


def _put_list(table: str, key: str) -> Callable[[dict[str, Any], str], None]:
    def put(data: dict[str, Any], value: str) -> None:
        data[table][key] = [value]

    return put


def _off(value: str) -> bool:
    return value == ""


def _env_key(data: dict[str, Any], value: str) -> None:
    data["env"] = {value: "ENVVALMARK"}


FIELDS = {
    "name": Field("[service] name", _put("service", "name"), "zq"),
    "version": Field("[service] version", _put("service", "version"), "7.7.7"),
    "entry": Field("[service] entry", _put("service", "entry"), "entrymark.wsgi:create_app()"),
    "description": Field("[service] description", _put("service", "description"), "DESCMARK", special=_off),
    "server_name": Field(
        "[http] server_names",
        _put_list("http", "server_names"),
        "srvmark.example",
        special=lambda value: value == "_" or value.startswith("*"),
    ),
    "health_path": Field("[http] health_path", _put("http", "health_path"), "/healthmark"),
    "max_body": Field("[http] max_body", _put("http", "max_body"), "66m"),
    "tls_cert": Field("[tls] cert", _put("tls", "cert"), "/certmark/c.pem"),
    "tls_key": Field("[tls] key", _put("tls", "key"), "/keymark/k.pem"),
    "env_key": Field("[env]", _env_key, "ENVKEYMARK"),
    "env_value": Field("[env] ENVKEYMARK", _put("env", "ENVKEYMARK"), "ENVVALMARK"),
    "secret": Field("[secrets] files", _put_list("secrets", "files"), "secmark"),
    "memory_max": Field("[limits] memory_max", _put("limits", "memory_max"), "777M", special=_off),
    "cpu_quota": Field("[limits] cpu_quota", _put("limits", "cpu_quota"), "555%", special=_off),
    "tls_mode": Field("[tls] mode", _put("tls", "mode"), "provided"),
    "network": Field("[security] network", _put("security", "network"), "outbound"),
}

# Valid values of each field, edge cases included, that hypothesis splices hostile text into
# (a list, not values generated from the patterns: fast enough for thousands of cases).
VALID = {
    "name": ["a", "zq", "shop_2", "a" * 31, "x_"],
    "version": ["0", "1.2.0", "2.0.0rc1", "1.0+local.7", "1.0-post_1", "1" * 64],
    "entry": [
        "app:app",
        "a.b.c:create_app()",
        "_m:_f",
        "pkg.wsgi:application",
        'm.wsgi:make(a=[],b="~/x.y",c=-1,d=None,e=["p","q"])',
    ],
    "description": ["Shop", "100% of it", "a \\ b", "say \"hi\"; {x} $y 'z'", "Café, 東京 🚀", "x" * 200],
    "server_name": ["_", "a", "shop.example.com", "*.example.org", "x-1.y-2", "a" * 253],
    "health_path": ["/", "/healthz", "/a/b?c=d&e=%20f", "/~x/(y)*+,:@!"],
    "max_body": ["0", "10m", "1k", "999999999g"],
    "tls_cert": ["/", "/etc/pki/c.pem", "/a+b@c,d=e:f/-_.x"],
    "tls_key": ["/", "/etc/pki/k.pem", "/a+b@c,d=e:f/-_.x"],
    "env_key": ["A", "_", "a1_B2", "X" * 128],
    "env_value": [
        "",
        "x",
        "a b",
        "100%",
        "q\"uo'te",
        "back\\",
        "$HOME",
        "%n%%",
        "\\n",
        "日本 🚀",
        "x" * 4096,
    ],
    "secret": ["a", "db_password", "stripe.key", "a-b.c_d", "s" * 63],
    "memory_max": ["", "0", "512M", "1T", "9" * 15],
    "cpu_quota": ["", "1%", "200%", "9999999%"],
    "tls_mode": ["provided"],
    "network": ["outbound"],
}


# Splices that broke, or could break, a config file: tried at both ends and in the middle of
# a valid value of every field, deterministically, on top of what hypothesis draws.
CRITICAL = [
    "\n",
    "\r",
    "\r\n",
    "\\",
    "%",
    "%n",
    "\x00",
    "\x85",
    "\u2028",
    "$x",
    ";",
    "{",
    "}",
    '"',
    "'",
    " ",
    "\t",
    "#",
]


def splice(value: str, junk: str, at: int) -> str:
    return value[:at] + junk + value[at:]


@st.composite
def candidates(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid value, a valid value with hostile text spliced in, or arbitrary text."""
    kind = draw(st.sampled_from(["valid", "spliced", "spliced", "arbitrary"]))
    if kind == "arbitrary":
        return draw(st.text(ANY_CHAR, max_size=40))
    value = draw(valid)
    if kind == "valid":
        return value
    junk = draw(st.one_of(st.sampled_from(CRITICAL), st.text(ANY_CHAR, min_size=1, max_size=6)))
    return splice(value, junk, draw(st.sampled_from([0, len(value), len(value) // 2])))


def spec_with(field: Field, value: str) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    field.set(data, value)
    return data


BENIGN = parse_spec(BASE)
BENIGN_LAYOUT = Layout.for_spec(BENIGN)


def expected(benign: list[Directive], marker: str, value: str) -> list[Directive]:
    """The benign directives with the marker replaced by the value (inside the nginx names `map`
    lower-cased, as `$host` is, and with dots escaped in its regular-expression keys)."""

    def swapped(d: Directive) -> Directive:
        parent = (str(PurePosixPath(marker).parent),)
        if d.key == "PathChanged" and marker.startswith("/") and d.value == parent:
            # the directory of a provided certificate or key, watched too (render/tls_watch.py)
            return Directive(d.where, d.key, (str(PurePosixPath(value).parent),))
        in_map = bool(d.where[:1]) and d.where[0].startswith("map ")
        new = value.lower() if in_map else value

        def swap(text: str) -> str:
            if in_map:
                text = text.replace(marker.replace(".", "\\."), new.replace(".", "\\."))
            return text.replace(marker, new)

        return Directive(
            tuple(t.replace(marker, value) for t in d.where), swap(d.key), tuple(map(swap, d.value))
        )

    return [swapped(d) for d in benign]


@functools.cache
def benign_directives() -> list[tuple[str, list[Directive]]]:
    return [
        (str(f.path), directives(str(f.path), f.content)) for f in render_all(BENIGN, BENIGN_LAYOUT, RELEASE)
    ]


def check_rendered(spec: ServiceSpec, release: str, marker: str, value: str, exact: bool = True) -> None:
    """Every file reads as the benign one with the marker replaced by the value, nothing else."""
    hostile = render_all(spec, Layout.for_spec(spec), release)
    benign = benign_directives()
    assert [str(f.path) for f in hostile] == [path.replace(marker, value) for path, _ in benign]
    for (_, before), h in zip(benign, hostile):
        seen = directives(str(h.path), h.content)
        if not exact:
            continue
        assert seen == expected(before, marker, value), str(h.path)
        for d in seen:  # text in an nginx value or an Exec line must not name a variable
            expands = h.path.suffix == ".conf" or d.key.startswith("Exec")
            if expands and value != marker and any(value in v for v in d.value):
                assert "$" not in value, (d, value)


def check_refusal(message: str, label: str) -> None:
    assert label in message, message
    assert message.isprintable(), repr(message)  # one line; the value shown escaped


TOML_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def toml_string(text: str) -> str | None:
    """A TOML basic string holding `text` exactly (None: TOML cannot hold a surrogate)."""
    out = []
    for ch in text:
        if unicodedata.category(ch) == "Cs":
            return None
        if ch in TOML_ESCAPES:
            out.append(TOML_ESCAPES[ch])
        elif not ch.isprintable():
            out.append(f"\\U{ord(ch):08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_document(data: dict[str, Any]) -> str | None:
    lines = []
    for table, values in data.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            items = value if isinstance(value, list) else [value]
            encoded = [toml_string(v) for v in items]
            name = toml_string(key)
            if name is None or None in encoded:
                return None
            text = f"[{', '.join(str(e) for e in encoded)}]" if isinstance(value, list) else encoded[0]
            lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"


def cli_render(directory: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["render", str(directory), *extra])
    return code, err.getvalue()


@pytest.fixture(scope="module")
def toml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("toml")


PROPERTY = settings(
    max_examples=160,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def check_value(field: Field, value: str, toml_dir: Path | None) -> bool:
    """Refused naming the field (and, given a directory, by the CLI with exit 2), or rendered
    exactly where the marker was. True when refused."""
    data = spec_with(field, value)
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        check_refusal(exc.message, field.label)
        document = toml_document(data)
        if toml_dir is not None and document is not None:
            (toml_dir / "service.toml").write_text(document, encoding="utf-8")
            code, err = cli_render(toml_dir)
            assert code == 2 and err.count("\n") == 1 and field.label in err, err
        return True
    check_rendered(spec, RELEASE, field.marker, value, exact=not field.special(value))
    return False


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_text_field_is_refused_or_renders_exactly_where_it_should(name: str, toml_dir: Path) -> None:
    field = FIELDS[name]

    @PROPERTY
    @given(value=candidates(st.sampled_from(VALID[name])), to_cli=st.integers(0, 15))
    def prop(value: str, to_cli: int) -> None:
        check_value(field, value, toml_dir if to_cli == 0 else None)  # a sample through the CLI

    prop()


@pytest.mark.parametrize("name", list(FIELDS))
def test_every_critical_splice_of_every_field(name: str, toml_dir: Path) -> None:
    """Each CRITICAL text at the start, middle and end of the field's benign value."""
    field = FIELDS[name]
    marker = field.marker
    refused = 0
    for junk in CRITICAL:
        for at in sorted({0, len(marker) // 2, len(marker)}):
            refused += check_value(field, splice(marker, junk, at), toml_dir if at == len(marker) else None)
    assert refused > 0


@PROPERTY
@given(value=candidates(st.sampled_from(["R", "20260101T000000Z-abc", "a.b_c+d-e", "x" * 64])))
def test_a_release_id_is_refused_or_renders_exactly_where_it_should(value: str) -> None:
    """`render --release` and every deploy: the id becomes a path in the unit and the config."""
    try:
        render_all(BENIGN, BENIGN_LAYOUT, value)
    except UsageError as exc:
        check_refusal(exc.message, "release id")
        return
    check_rendered(BENIGN, value, RELEASE, value)


# --- the reported cases, one by one -------------------------------------------------------------

MINIMAL: dict[str, dict[str, object]] = {
    "service": {"name": "shop", "version": "1.2.0", "entry": "shop:create_app()"}
}
INJECTION = "Shop\r[Service]\rExecStartPre=+/bin/sh -c id"


def _with(table: str, key: str, value: object) -> dict[str, Any]:
    data = copy.deepcopy(MINIMAL)
    data.setdefault(table, {})[key] = value
    return data


def test_the_reported_description_injection_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\[service\] description .*U\+000D"):
        parse_spec(_with("service", "description", INJECTION))
    (tmp_path / "service.toml").write_text(
        '[service]\nname = "shop"\nversion = "1.2.0"\nentry = "shop:app"\n'
        'description = "Shop\\r[Service]\\rExecStartPre=+/bin/sh -c id"\n'
    )
    code, err = cli_render(tmp_path)
    assert code == 2 and err.count("\n") == 1 and "[service] description" in err, err


def test_a_description_ending_in_a_backslash_is_refused() -> None:
    """systemd would append the next line (`Requires=`) to the description."""
    with pytest.raises(SpecError, match=r"\[service\] description .*backslash"):
        parse_spec(_with("service", "description", "Shop \\"))


@pytest.mark.parametrize(
    ("table", "key", "value", "label"),
    [
        ("service", "name", "shop\n", "[service] name"),
        ("service", "version", "1.2.0\n", "[service] version"),
        ("service", "entry", "shop:app\n", "[service] entry"),
        ("http", "server_names", ["shop.example\n"], "[http] server_names"),
        ("http", "health_path", "/healthz\n", "[http] health_path"),
        ("http", "max_body", "10m\n", "[http] max_body"),
        ("secrets", "files", ["db\n"], "[secrets] files"),
        ("limits", "memory_max", "512M\n", "[limits] memory_max"),
        ("limits", "cpu_quota", "200%\n", "[limits] cpu_quota"),
        ("env", "K\n", "v", "[env]"),
        ("env", "K", "v\n", "[env] K"),
        ("tls", "cert", "/c.pem\n", "[tls] cert"),
    ],
)
def test_a_trailing_newline_is_refused_in_every_field(
    table: str, key: str, value: object, label: str
) -> None:
    data = _with(table, key, value)
    if table == "tls":
        data["tls"].update(mode="provided", key="/k.pem")
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    check_refusal(err.value.message, label)


def test_render_refuses_a_release_id_with_a_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "service.toml").write_text(
        '[service]\nname = "shop"\nversion = "1.2.0"\nentry = "shop:app"\n'
    )
    code, err = cli_render(tmp_path, "--release", "R1\n")
    assert code == 2 and err.count("\n") == 1 and "release id" in err, err
    assert cli_render(tmp_path, "--release", "R1")[0] == 0


def test_spec_json_is_validated_whole_on_the_host() -> None:
    """The host's parse of spec.json: missing or unknown keys are named, never a traceback."""
    good = parse_spec(MINIMAL).to_dict()
    assert ServiceSpec.from_dict(good) == parse_spec(MINIMAL)
    without_tls = {k: v for k, v in good.items() if k != "tls"}
    with pytest.raises(SpecError, match=r"spec\.json: tls is missing"):
        ServiceSpec.from_dict(without_tls)
    with pytest.raises(SpecError, match=r"spec\.json: unknown key 'evil'"):
        ServiceSpec.from_dict({**good, "evil": 1})
    with pytest.raises(SpecError, match=r"spec.json: tls must be an object"):
        ServiceSpec.from_dict({**good, "tls": "self-signed"})
    with pytest.raises(SpecError, match=r"spec.json: \[service\] description .*U\+2028"):
        ServiceSpec.from_dict(
            {**good, "service": {**good["service"], "description": "a\u2028ExecStartPre=+/bin/sh"}}
        )
    with pytest.raises(SpecError, match=r"spec\.json: must be a JSON object"):
        ServiceSpec.from_dict([])  # type: ignore[arg-type]


def test_a_version_that_would_backtrack_forever_is_refused_at_once() -> None:
    with pytest.raises(SpecError, match=r"\[service\] version"):
        parse_spec(_with("service", "version", "1" + "a" * 40 + "!"))


# --- accepted hostile-but-valid values through the real tools -------------------------------------

# Hostile candidates: each is refused (naming the field) or must pass the real tools.
DESCRIPTIONS = [
    INJECTION,
    "Shop \\",
    "tab\there",
    "100% of it %n %% %",
    "a \\ b \\\\ c",
    "say \"hi\"; {x} $y 'z' ${HOME}",
    "Café, 東京 🚀",
    "[Service]",
    "ExecStartPre=+/bin/sh -c id",
    "#not a comment ;nor this",
    "x" * 200,
]
ENV_VALUES = [
    "v\n",
    "\r[Service]\rExecStartPre=+/bin/sh -c id",
    "",
    "q\"uo'te",
    "back\\",
    "\\",
    "\\\\\\",
    "$HOME ${HOME} $$",
    "%n%%%",
    "\\n\\r\\x41",
    "日本 🚀",
    " lead and trail ",
    "a=b=c",
    "'",
    '"',
    "#x ;y [Service]",
    "x" * 4096,
]


def _accepted(values: list[str], field: str, make: Callable[[str], dict[str, Any]]) -> list[str]:
    accepted = []
    for value in values:
        try:
            parse_spec(make(value))
        except SpecError as exc:
            check_refusal(exc.message, field)
            continue
        accepted.append(value)
    return accepted


def _unit_specs() -> list[ServiceSpec]:
    env_values = _accepted(ENV_VALUES, "[env] V", lambda v: _with("env", "V", v))
    env = {f"V{i}": value for i, value in enumerate(env_values)}
    texts = _accepted(DESCRIPTIONS, "[service] description", lambda v: _with("service", "description", v))
    assert len(texts) >= 8 and len(env_values) >= 15
    service = {"version": "1.0", "entry": "app:app"}
    return [
        parse_spec({"service": {**service, "name": f"hostile{i}", "description": text}, "env": env})
        for i, text in enumerate(texts)
    ]


def test_accepted_hostile_values_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "apt-get install systemd")
    specs = _unit_specs()
    files = [f for spec in specs for f in render_all(spec, Layout.for_spec(spec), "R1")]
    units = [f for f in files if f.path.suffix in (".service", ".socket")]
    root = systemd_root(tmp_path, units)
    result = run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *unit_paths(root, units)]
    )
    # verify exits 0 on bad quoting or an invalid assignment and only warns: any output fails
    assert result.returncode == 0 and not (result.stdout + result.stderr), result.stdout + result.stderr
    for spec, unit in zip(specs, [f for f in units if f.path.suffix == ".service"]):
        seen = {(d.key, d.value) for d in directives(str(unit.path), unit.content)}
        assert ("Description", (f"{spec.name}: {spec.service.description}",)) in seen
        assert {("Environment", (f"{key}={value}",)) for key, value in spec.env.vars} <= seen


SERVER_NAMES = [["_"], ["*.example.org", "a" * 30 + ".example"], ["x-1.y-2.example", "a"], ["B.EXAMPLE"]]
MAX_BODIES = ["0", "999999999g", "1k", "10m"]
CERT_NAMES = ["c.pem", "a+b@c,d=e:f-_.pem", "x.y.z", "UPPER"]


def test_accepted_hostile_values_pass_nginx_t(tmp_path: Path) -> None:
    nginx = need_tool("nginx", "run scripts/install-nginx.sh as root")
    openssl = need_tool("openssl", "apt-get install openssl")
    cert, key = self_signed(tmp_path / "tls", openssl)
    conf = nginx_prefix(tmp_path, "debian", stock_default=False)
    version = nginx_version(nginx)
    for i, (names, body, cert_name) in enumerate(zip(SERVER_NAMES, MAX_BODIES, CERT_NAMES)):
        own = tmp_path / "provided" / str(i)
        own.mkdir(parents=True)
        shutil.copy(cert, own / cert_name)
        shutil.copy(key, own / f"key-{cert_name}")
        # 31 characters, the most a name may have: the site's `$integrator_NAME` (42) fits nginx's
        # default variables_hash_bucket_size (64 holds names of at most 46).
        spec = parse_spec({
            "service": {"name": "n" * 30 + str(i), "version": "1.0", "entry": "app:app"},
            "http": {"server_names": names, "max_body": body, "default_server": i == 0},
            "tls": {"mode": "provided", "cert": str(own / cert_name), "key": str(own / f"key-{cert_name}")},
        })  # fmt: skip
        layout = RootedLayout.below(tmp_path, spec, "debian")
        for f in render_all(spec, layout, "R1", nginx_version=version):
            if str(f.path).startswith(str(tmp_path)):
                Path(f.path).parent.mkdir(parents=True, exist_ok=True)
                Path(f.path).write_text(f.content, encoding="utf-8")
                if f.path == layout.nginx_site:
                    seen = {(d.key, d.value) for d in directives(str(f.path), f.content)}
                    assert ("server_name", tuple(names)) in seen and ("client_max_body_size", (body,)) in seen
                    assert ("ssl_certificate", (str(own / cert_name),)) in seen
    result = nginx_test(nginx, tmp_path, conf)
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_other_names_that_become_paths_are_matched_whole() -> None:
    """A sandbox name (an interface and a directory) and a `--python` target (a lock's name)."""
    from integrator.bundle.targets import parse_targets
    from integrator.sandbox.paths import validate_name

    assert validate_name("h1") == "h1" and parse_targets(["3.11"], ["x86_64"])
    with pytest.raises(UsageError, match="bad sandbox name"):
        validate_name("h1\n")
    with pytest.raises(UsageError, match="--python"):
        parse_targets(["3.11\n"], ["x86_64"])


@pytest.mark.parametrize(
    "entry",
    [
        "m:f(a)",  # positional
        "m:f(a='x')",  # single quote: it would close the ExecStart= word
        'm:f(a=__import__("os"))',  # a call, not a literal
        'm:f(a="x y")',  # a space
        'm:f(a="%n")',  # a systemd specifier
        'm:f(a="$HOME")',
        'm:f(a="\\\\x")',
        "m:f(a=1,)",
        "m:f(**k)",
        "m:f(a={})",
    ],
)
def test_an_entry_whose_arguments_are_not_plain_literals_is_refused(entry: str) -> None:
    with pytest.raises(SpecError, match=r"\[service\] entry"):
        parse_spec({"service": {"name": "shop", "version": "1.0", "entry": entry}})
