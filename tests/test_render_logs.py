"""A site's nginx lines in the journal (issue 10 item 6): the rendered directives, the access
line's JSON, and the journalctl matches `logs NAME --source` builds, as data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import integrator.template
from integrator.errors import UsageError
from integrator.host.journal import journal_argv, journal_matches
from integrator.layout import Layout, profile
from integrator.render.nginx import site

from .render_checks import CASES, DEFAULT, Case

# The rule of the template's requestlog.py for an incoming X-Request-ID.
TEMPLATE_ID_RE = re.search(
    r're\.compile\(r"\^(.*)\$"\)',
    (Path(integrator.template.__file__).parent / "files/src/__name__/requestlog.py").read_text(),
).group(1)  # type: ignore[union-attr]

# nginx's syslog tag: "at most 32 characters, alphanumerics and underscores" (ngx_syslog.c).
NGINX_TAG_RE = re.compile(r"[A-Za-z0-9_]{1,32}")


def _site(case: Case) -> str:
    return site(case.spec, case.layout, case.nginx_version)


def _servers(text: str) -> list[str]:
    """The body of each top-level server{} block."""
    return re.findall(r"^server \{\n(.*?)^\}", text, re.S | re.M)


def _escape_json(value: str) -> str:
    """What nginx's `escape=json` does to a variable's value (ngx_http_log_json_variable)."""
    table = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
    return "".join(table.get(c, f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in value)


def _access_line(text: str, values: dict[str, str]) -> str:
    """The access line nginx would write: the site's log_format strings joined, every variable
    replaced by its value, escaped as escape=json does (unknown variables: nginx prints "")."""
    fmt = re.search(r"^log_format (\S+) escape=json\n(.*?);$", text, re.S | re.M)
    assert fmt is not None, "no log_format with escape=json"
    joined = "".join(re.findall(r"'([^']*)'", fmt.group(2)))
    return re.sub(r"\$([a-z0-9_]+)", lambda m: _escape_json(values.get(m.group(1), "")), joined)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_server_of_a_site_logs_to_the_journal_with_the_service_tag(case: Case) -> None:
    text = _site(case)
    tag = case.layout.journal_tag
    target = f"syslog:server=unix:/dev/log,facility=daemon,tag={tag},nohostname"
    servers = _servers(text)
    assert len(servers) == 2  # the redirect and the HTTPS server
    for body in servers:
        only_if = f"if=$integrator_{case.spec.name}_log"
        assert f"    access_log {target} {case.spec.name}_json {only_if};" in body.splitlines()
        assert f"    error_log {target} error;" in body.splitlines()
    assert f"\nlog_format {case.spec.name}_json escape=json\n" in text


@pytest.mark.parametrize("name", ["a", "shop", "x" * 31, "a_b_2"])
def test_every_valid_service_name_is_a_tag_nginx_accepts(name: str) -> None:
    assert NGINX_TAG_RE.fullmatch(Layout(name, profile("debian")).journal_tag)


HOSTILE = {
    "time_iso8601": "2026-11-29T12:00:00+00:00",
    "remote_addr": "10.0.0.1",
    "host": 'shop"}{"x":1',
    "request_method": "GET",
    "request_uri": '/a?b="c"\\d\x01\n',
    "server_protocol": "HTTP/1.1",
    "status": "502",
    "body_bytes_sent": "0",
    "request_time": "0.003",
    "upstream_status": "502",
    "upstream_response_time": "0.001, 0.002",
    "http_user_agent": 'curl/8\t"quoted" \\ é',
    "request_id": "0123456789abcdef0123456789abcdef",
}


def test_the_access_line_is_one_json_object_whatever_the_client_sends() -> None:
    line = json.loads(_access_line(_site(DEFAULT), HOSTILE))
    assert line["host"] == HOSTILE["host"]
    assert line["uri"] == HOSTILE["request_uri"]
    assert line["user_agent"] == HOSTILE["http_user_agent"]
    assert (line["status"], line["body_bytes_sent"], line["request_time"]) == (502, 0, 0.003)
    assert line["referer"] == "" and line["tls"] == ""  # not set: escape=json prints nothing
    assert set(line) == {
        "time", "remote_addr", "host", "method", "uri", "protocol", "status", "body_bytes_sent",
        "request_time", "upstream_status", "upstream_response_time", "tls", "referer", "user_agent",
        "request_id",
    }  # fmt: skip


def test_nginx_logs_the_request_id_it_passes_to_the_app() -> None:
    """One id per request in both logs: the access line's request_id and X-Request-ID to the app
    are the same variable, nginx's $request_id unless a well-formed id came in (the template's rule)."""
    text = _site(DEFAULT)
    [var] = re.findall(r"^\s+proxy_set_header X-Request-ID (\$\w+);$", text, re.M)
    assert f'"request_id":"{var}"' in text
    values = {**HOSTILE, var[1:]: "abc"}
    assert json.loads(_access_line(text, values))["request_id"] == "abc"
    body = re.search(rf"^map \$http_x_request_id {re.escape(var)} \{{\n(.*?)^\}}", text, re.S | re.M)
    assert body is not None, "no map for the request id"
    assert body.group(1).split() == [
        "default",
        "$request_id;",
        f'"~^{TEMPLATE_ID_RE}$"',
        "$http_x_request_id;",
    ]


def _log_decision(text: str, upstream_status: str, status: str) -> str:
    """The value nginx gives the site's access_log `if=` variable: its map's regexes tried in
    order on "$upstream_status:$status" (PCRE; these few constructs mean the same in Python's re)."""
    [var] = re.findall(r"^\s+access_log \S+ \S+ if=(\$\w+);$", text, re.M)[:1]
    body = re.search(rf'^map "\$upstream_status:\$status" {re.escape(var)} \{{\n(.*?)^\}}', text, re.S | re.M)
    assert body is not None, "no map for the access line"
    entries = [line.strip().rstrip(";").rsplit(" ", 1) for line in body.group(1).splitlines()]
    default = next(value for key, value in entries if key == "default")
    for key, value in entries:
        if key.startswith('"~') and re.search(key[2:-1], f"{upstream_status}:{status}"):
            return value
    return default


@pytest.mark.parametrize(
    ("upstream_status", "status", "logged", "why"),
    [
        ("200", "200", "0", "proxied and answered by the app: the app's line is the request's"),
        ("404", "404", "0", "the app's own 404"),
        ("500", "500", "0", "the app's own error: it logs it"),
        ("", "200", "1", "a static file: no upstream"),
        ("", "301", "1", "the redirect server"),
        ("", "421", "1", "nginx's name check"),
        ("", "413", "1", "a body over client_max_body_size"),
        ("", "499", "1", "the client left before nginx chose an upstream"),
        ("502", "502", "1", "the app is down or closed the connection: gunicorn logged nothing"),
        ("504", "504", "1", "the app timed out"),
        ("502, 200", "200", "1", "a retry: two upstream attempts"),
        ("200", "304", "1", "nginx answered another status than the app's"),
        ("200", "499", "1", "the client left while the app answered"),
    ],
)
def test_the_access_line_is_written_only_where_the_app_wrote_none(
    upstream_status: str, status: str, logged: str, why: str
) -> None:
    for case in CASES:
        assert _log_decision(_site(case), upstream_status, status) == logged, (case.name, why)


# --- which journal lines `logs NAME --source` shows ------------------------------------------

SHOP = Layout("shop", profile("debian"))
UNITS = ("shop-a.service", "shop-a.socket", "shop-b.service", "shop-b.socket", "shop.service", "shop.socket")
APP = [
    *(f"_SYSTEMD_UNIT={u}" for u in UNITS),
    "+",
    "_PID=1",
    *(f"UNIT={u}" for u in UNITS),
]  # both slots, legacy
NGINX = ["_SYSTEMD_UNIT=nginx.service", "SYSLOG_IDENTIFIER=shop"]


@pytest.mark.parametrize(
    ("source", "matches"), [("app", APP), ("nginx", NGINX), ("all", [*APP, "+", *NGINX])]
)
def test_journal_matches_per_source(source: str, matches: list[str]) -> None:
    assert journal_matches(SHOP, source) == matches


def test_journal_argv_puts_options_before_the_matches() -> None:
    assert journal_argv(SHOP, "nginx", True, "1 hour ago", 20) == [
        "journalctl", "-n", "20", "--no-pager", "--since", "1 hour ago", "-f", *NGINX,
    ]  # fmt: skip


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown log source 'web': use one of all, app, nginx"):
        journal_matches(SHOP, "web")
