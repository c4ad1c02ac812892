"""Renderers: golden files per case, plus the properties a golden diff could hide.

Golden cases live in tests/golden/<case>/ (service.toml, case.json, expected/<path>).
`UPDATE_GOLDEN=1 pytest tests/test_render.py` rewrites expected/; review the diff by eye.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path, PurePosixPath

import pytest

from integrator.cli import main
from integrator.errors import UsageError
from integrator.layout import Layout
from integrator.render import RenderedFile, render_all
from integrator.render.commands import render, write_below
from integrator.render.nginx import site
from integrator.render.systemd import service_unit

from .render_checks import CASES, DEFAULT, Case
from .spec_edit import edit


def _expected(case: Case) -> dict[str, str]:
    root = case.dir / "expected"
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()
    }


def _by_name(files: list[RenderedFile]) -> dict[str, str]:
    return {str(f.path.relative_to("/")): f.content for f in files}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case: Case) -> None:
    files = case.render()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(case.dir / "expected", ignore_errors=True)
        for f in files:
            write_below(case.dir / "expected", f)
    expected = _expected(case)
    actual = _by_name(files)
    assert sorted(actual) == sorted(expected)
    for path, text in actual.items():
        assert text == expected[path], f"{case.name}: {path} differs (UPDATE_GOLDEN=1 to accept)"


# --- render_all ---------------------------------------------------------------------------------


def test_render_all_is_sorted_deterministic_and_complete() -> None:
    files = DEFAULT.render()
    assert files == DEFAULT.render()
    assert [str(f.path) for f in files] == sorted(str(f.path) for f in files)
    layout = DEFAULT.layout
    assert {f.path for f in files} == {
        layout.slot("a").service_unit_path,
        layout.slot("a").socket_unit_path,
        layout.gunicorn_conf(DEFAULT.release_id),
        layout.nginx_site,
        layout.nginx_tls_include,
        layout.nginx_proxy_include,
        layout.nginx_headers_include,
        layout.nginx_catch_all(DEFAULT.spec.http.http_port, tls=False),
        layout.nginx_catch_all(DEFAULT.spec.http.https_port, tls=True),
    }
    assert all((f.mode, f.owner, f.group) == (0o644, "root", "root") for f in files)


@pytest.mark.parametrize("bad", ["", "a b", "50%", "../x", "$HOME", "-x", "x" * 65])
def test_release_ids_that_would_break_a_unit_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="release id"):
        render_all(DEFAULT.spec, DEFAULT.layout, bad)


# --- systemd ------------------------------------------------------------------------------------


def _directives(unit: str) -> list[str]:
    return [line for line in unit.splitlines() if line and not line.startswith(("#", "["))]


def test_service_runs_its_own_release_never_current() -> None:
    unit = service_unit(DEFAULT.spec, DEFAULT.layout, "R7", DEFAULT.layout.slot("a"))
    start = next(line for line in _directives(unit) if line.startswith("ExecStart="))
    assert start == (
        "ExecStart=/opt/demo/releases/R7/venv/bin/gunicorn"
        " --config /opt/demo/releases/R7/gunicorn.conf.py demo.app:create_app()"
    )
    assert "/opt/demo/current" not in "\n".join(_directives(unit))


def test_a_factory_with_keyword_arguments_is_one_single_quoted_execstart_word() -> None:
    spec = edit(DEFAULT.spec, service={"entry": 'demo.app:make(root="~",auth=[])'})
    unit = service_unit(spec, DEFAULT.layout, "R7", DEFAULT.layout.slot("a"))
    start = next(line for line in _directives(unit) if line.startswith("ExecStart="))
    assert start.endswith("/gunicorn.conf.py 'demo.app:make(root=\"~\",auth=[])'")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_service_avoids_the_measured_pitfalls(case: Case) -> None:
    lines = _directives(service_unit(case.spec, case.layout, case.release_id, case.layout.slot("a")))
    keys = [line.split("=", 1)[0] for line in lines]
    assert "RuntimeDirectory" not in keys and "PrivateUsers" not in keys and "DynamicUser" not in keys
    filters = [line for line in lines if line.startswith("SystemCallFilter=")]
    assert filters == ["SystemCallFilter=@system-service", "SystemCallFilter=~@privileged @resources"]
    assert (
        f"User={case.spec.name}" in lines
        and f"TimeoutStopSec={case.spec.server.graceful_timeout + 5}" in lines
    )
    assert not any("control-socket" in line for line in lines)


# journald's per-unit defaults (journald.conf RateLimitIntervalSec=30s, RateLimitBurst=10000).
JOURNALD_DEFAULT_PER_S = 10_000 / 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_app_unit_raises_journalds_rate_limit_above_the_default(case: Case) -> None:
    """One JSON line per request: at journald's default, lines above ~330 requests/s are dropped.
    Every unit running the app's code (the slot's gunicorn, workers, timers) says its own limit."""
    units = [
        f for f in case.render() if f.path.suffix == ".service" and f"User={case.spec.name}" in f.content
    ]
    assert units
    for unit in units:
        lines = _directives(unit.content)
        [interval] = [line.split("=", 1)[1] for line in lines if line.startswith("LogRateLimitIntervalSec=")]
        [burst] = [line.split("=", 1)[1] for line in lines if line.startswith("LogRateLimitBurst=")]
        assert interval.endswith("s") and int(burst) / int(interval[:-1]) >= 10 * JOURNALD_DEFAULT_PER_S, (
            unit.path
        )


def test_secrets_are_credentials_never_environment() -> None:
    case = next(c for c in CASES if c.name == "outbound_secrets_provided_tls")
    lines = _directives(service_unit(case.spec, case.layout, case.release_id, case.layout.slot("a")))
    assert [line for line in lines if line.startswith("LoadCredential=")] == [
        "LoadCredential=db_password:/etc/integrator/billing/credentials/db_password",
        "LoadCredential=stripe.key:/etc/integrator/billing/credentials/stripe.key",
    ]
    assert not any(
        line.startswith("Environment") and ("password" in line or "stripe" in line) for line in lines
    )


def _systemd_unquote(word: str) -> str:
    """What systemd makes of one Environment= word: unquote, C-unescape, then `%%` -> `%`."""
    if word.startswith('"'):
        assert word.endswith('"')
        body = word[1:-1]
        simple = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
        body = re.sub(
            r"\\(x[0-9a-f]{2}|.)",
            lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("x") else simple[m.group(1)],
            body,
        )
        return body.replace("%%", "%")
    return word


@pytest.mark.parametrize(
    "value", ["plain", "", "two words", 'say "hi"', "100%", "$HOME", "back\\slash\\", "tab\there\nnl", "\x01"]
)
def test_environment_values_survive_systemd_quoting(value: str) -> None:
    spec = edit(DEFAULT.spec, env={"vars": (("VALUE", value),)})
    unit = service_unit(spec, DEFAULT.layout, "R1", DEFAULT.layout.slot("a"))
    [line] = [line for line in unit.splitlines() if "VALUE=" in line]
    assert "\n" not in line
    assert _systemd_unquote(line.split("=", 1)[1]) == f"VALUE={value}"


NO_NETWORK = ["PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX", "IPAddressDeny=any"]
OUTBOUND = ["RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"]


@pytest.mark.parametrize(
    ("network", "present", "absent"),
    [("none", NO_NETWORK, OUTBOUND), ("outbound", OUTBOUND, ["PrivateNetwork=yes", "IPAddressDeny=any"])],
)
def test_network_profiles(network: str, present: list[str], absent: list[str]) -> None:
    spec = edit(DEFAULT.spec, security={"network": network})
    lines = _directives(service_unit(spec, DEFAULT.layout, "R1", DEFAULT.layout.slot("a")))
    assert all(line in lines for line in present) and not any(line in lines for line in absent)


# --- nginx --------------------------------------------------------------------------------------


def _location_blocks(text: str) -> list[str]:
    return re.findall(r"location [^{]*\{(.*?)\n    \}", text, flags=re.DOTALL)


@pytest.mark.parametrize(
    ("version", "http2_on"), [((1, 22, 1), False), ((1, 25, 0), False), ((1, 25, 1), True)]
)
def test_http2_syntax_follows_the_nginx_version(version: tuple[int, int, int], http2_on: bool) -> None:
    text = site(DEFAULT.spec, DEFAULT.layout, version)
    assert ("http2 on;" in text) is http2_on
    assert ("listen 443 ssl http2;" in text) is not http2_on


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_add_header_or_hsts_below_server_level(case: Case) -> None:
    text = site(case.spec, case.layout, case.nginx_version)
    locations = _location_blocks(text)
    assert locations and not any("add_header" in block for block in locations)
    assert ("Strict-Transport-Security" in text) is case.spec.http.hsts


def test_redirect_keeps_a_non_standard_https_port() -> None:
    spec = edit(DEFAULT.spec, http={"https_port": 8443})
    text = site(spec, DEFAULT.layout, (1, 22, 1))
    assert "return 301 https://$integrator_demo:8443$request_uri;" in text


@pytest.mark.parametrize(
    ("version", "kept"), [((1, 18, 0), False), ((1, 19, 9), False), ((1, 19, 10), True), ((1, 22, 1), True)]
)
def test_the_upstream_is_the_serving_link_and_keeps_connections_only_if_it_can_cap_their_life(
    version: tuple[int, int, int], kept: bool
) -> None:
    """The old slot is stopped once nginx has nothing connected to it (host/drain.py): a kept
    connection must be closed by nginx itself within seconds, which needs `keepalive_time`."""
    text = site(DEFAULT.spec, DEFAULT.layout, version)
    upstream = text[text.index("upstream demo_app {") :].split("}", 1)[0]
    assert "server unix:/opt/demo/serving.sock;" in upstream and "gunicorn-" not in upstream
    assert ("keepalive 16;" in upstream) is kept
    assert ("keepalive_time 1s;" in upstream) is kept and ("keepalive_timeout 2s;" in upstream) is kept


def test_upstream_names_differ_per_service() -> None:
    other = edit(DEFAULT.spec, service={"name": "reports"})
    other_layout = Layout.for_spec(other)
    assert "upstream demo_app {" in site(DEFAULT.spec, DEFAULT.layout, (1, 22, 1))
    assert "upstream reports_app {" in site(other, other_layout, (1, 22, 1))


# --- the render command -------------------------------------------------------------------------


def test_render_command_writes_the_golden_files(tmp_path: Path) -> None:
    argv = ["render", str(DEFAULT.dir), "--out", str(tmp_path), "--release", DEFAULT.release_id]
    assert main(argv) == 0
    written = {p.relative_to(tmp_path).as_posix(): p for p in tmp_path.rglob("*") if p.is_file()}
    assert {name: p.read_text(encoding="utf-8") for name, p in written.items()} == _expected(DEFAULT)
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in written.values())


def test_render_command_prints_files_and_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    result = render(DEFAULT.dir, distro="debian", out=None, release_id=DEFAULT.release_id)
    assert "==> /etc/systemd/system/demo-a.service (0644 root:root) <==" in result.lines
    assert "ListenStream=/run/demo/gunicorn-a.sock" in result.lines
    assert main(["--json", "render", str(DEFAULT.dir), "--release", DEFAULT.release_id]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert [f["path"] for f in files] == [str(f.path) for f in DEFAULT.render()]
    assert {f["mode"] for f in files} == {"0644"} and all(len(f["sha256"]) == 64 for f in files)


def test_write_below_replaces_atomically_and_leaves_no_temp_file(tmp_path: Path) -> None:
    f = RenderedFile(PurePosixPath("/etc/x/a.conf"), "new\n", mode=0o600)
    (tmp_path / "etc/x").mkdir(parents=True)
    (tmp_path / "etc/x/a.conf").write_text("old\n")
    target = write_below(tmp_path, f)
    assert target.read_text() == "new\n" and target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["a.conf"]
