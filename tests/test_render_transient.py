"""render/transient.py: a command of the service in a transient unit, tested as data.

Every directive NAME.service confines itself with (everything but how gunicorn is started) must
be a --property of the transient unit, for every golden case; the command stays argv.
"""

from __future__ import annotations

import pytest

from integrator.errors import UsageError
from integrator.render.systemd import service_unit
from integrator.render.transient import transient_argv, unit_name

from .render_checks import CASES, DEFAULT, Case

# How NAME.service starts, reloads, stops and logs gunicorn: the one part a command does not share.
PROCESS_ONLY = {
    "Description",
    "Requires",
    "After",
    "Type",
    "NotifyAccess",
    "ExecStart",
    "ExecReload",
    "WorkingDirectory",
    "KillMode",
    "TimeoutStopSec",
    "Restart",
    "RestartSec",
    "SyslogIdentifier",
    "LogRateLimitIntervalSec",
    "LogRateLimitBurst",
    "Environment",
    "WantedBy",
}


def _service_directives(case: Case) -> list[str]:
    unit = service_unit(case.spec, case.layout, case.release_id, case.layout.slot("a"))
    return [
        line
        for line in unit.splitlines()
        if line and not line.startswith(("#", "[")) and line.partition("=")[0] not in PROCESS_ONLY
    ]


def _argv(case: Case, command: list[str], stdio: str = "pipe") -> list[str]:
    unit = unit_name(case.layout, "run", "42")
    return transient_argv(case.spec, case.layout, case.release_id, command, unit=unit, stdio=stdio)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_confining_directive_of_the_service_is_a_property(case: Case) -> None:
    argv = _argv(case, ["/usr/bin/true"])
    options = argv[: argv.index("--")]
    properties = [a.removeprefix("--property=") for a in options if a.startswith("--property=")]
    expected = _service_directives(case)
    assert len(expected) > 30  # the hardening, identity, limits: not an empty comparison
    assert properties == expected
    for must in ("User=", "ProtectSystem=strict", "NoNewPrivileges=yes", "SystemCallFilter=@system-service"):
        assert any(p.startswith(must) for p in properties)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_environment_is_the_services(case: Case) -> None:
    argv = _argv(case, ["/usr/bin/true"])
    env = [a.removeprefix("--setenv=") for a in argv[: argv.index("--")] if a.startswith("--setenv=")]
    venv = case.layout.venv(case.release_id)
    assert env[0] == f"PATH={venv}/bin:/usr/bin:/bin"
    assert env[3] == f"HOME={case.layout.app_state_dir}"  # data under ~ lands in the state directory
    assert env[4:] == [f"{k}={v}" for k, v in case.spec.env.vars]
    assert f"--working-directory={case.layout.app_dir(case.release_id)}" in argv


def test_secrets_are_credentials() -> None:
    case = next(c for c in CASES if c.name == "outbound_secrets_provided_tls")
    argv = _argv(case, ["/usr/bin/true"])
    assert "--property=LoadCredential=db_password:/etc/integrator/billing/credentials/db_password" in argv
    assert not any(a.startswith("--setenv=") and "password" in a for a in argv)


@pytest.mark.parametrize(
    ("stdio", "mode", "not_modes"),
    [("pipe", ["--pipe"], ["--pty"]), ("pty", ["--pty"], ["--pipe"]), ("journal", [], ["--pty", "--pipe"])],
)
def test_waits_collects_and_picks_its_stdio(stdio: str, mode: list[str], not_modes: list[str]) -> None:
    argv = _argv(DEFAULT, ["/usr/bin/true"], stdio=stdio)
    head = argv[: argv.index("--")]
    assert head[0] == "systemd-run"
    assert {"--wait", "--collect", *mode, f"--unit={DEFAULT.spec.name}-run-42.service"} <= set(head)
    assert not set(not_modes) & set(head)


def test_a_timeout_is_a_runtime_limit() -> None:
    unit = unit_name(DEFAULT.layout, "release", "r1")
    spec, layout = DEFAULT.spec, DEFAULT.layout
    argv = transient_argv(spec, layout, "R1", ["/bin/true"], unit=unit, stdio="journal", timeout_s=60)
    assert "--property=RuntimeMaxSec=60" in argv[: argv.index("--")]
    with pytest.raises(ValueError):
        transient_argv(spec, layout, "R1", ["/bin/true"], unit=unit, stdio="tty")


HOSTILE = [
    "two words",
    "; rm -rf /",
    "$(id)",
    "`id`",
    "'quoted'",
    '"dq"',
    "--property=User=root",
    "-p",
    "--",
    "%n %%",
    "back\\slash",
    "",
    "line\nbreak",
]


@pytest.mark.parametrize("arg", HOSTILE)
def test_hostile_arguments_stay_one_argument(arg: str) -> None:
    argv = _argv(DEFAULT, ["/usr/bin/printf", arg])
    tail = argv[argv.index("--") + 1 :]
    # what systemd execs: one argument each, `$$` (the only escape it knows in argv) made `$`
    assert [a.replace("$$", "$") for a in tail] == ["/usr/bin/printf", arg]


@pytest.mark.parametrize(("arg", "passed"), [("$HOME", "$$HOME"), ("${X}y", "$${X}y"), ("$$", "$$$$")])
def test_dollars_are_doubled_so_systemd_expands_nothing(arg: str, passed: str) -> None:
    argv = _argv(DEFAULT, ["/usr/bin/printf", arg])
    assert argv[argv.index("--") + 1 :] == ["/usr/bin/printf", passed]


@pytest.mark.parametrize(
    "command", [[], ["python"], ["./manage.py"], ["/bin/$X"], ["/bin/x\ny"], ["/bin/true", "a\0b"]]
)
def test_refused_commands(command: list[str]) -> None:
    with pytest.raises(UsageError):
        _argv(DEFAULT, command)


@pytest.mark.parametrize(("purpose", "token"), [("run", "a-b"), ("Run", "1"), ("run", ""), ("run", "x" * 33)])
def test_unit_name_parts_are_plain(purpose: str, token: str) -> None:
    with pytest.raises(ValueError):
        unit_name(DEFAULT.layout, purpose, token)
