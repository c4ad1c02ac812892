"""The CLI as a user meets it: help texts, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrator.cli import build_parser, main

VERBS = ["new", "clone", "init", "render", "plan", "bundle", "verify", "deploy", "status", "list", "logs"]
VERBS += ["releases", "rollback", "uninstall", "doctor", "sandbox"]


def test_help_lists_every_command_and_the_exit_codes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "integrator", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for verb in VERBS:
        assert f"\n    {verb} " in out or f"\n    {verb}\n" in out, verb
    assert "exit codes:" in out and "2  bad input" in out


@pytest.mark.parametrize("verb", VERBS)
def test_every_command_has_its_own_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert "usage: integrator " + verb in capsys.readouterr().out


def test_bare_integrator_prints_the_help_not_an_error() -> None:
    run = subprocess.run([sys.executable, "-m", "integrator"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith("usage: integrator") and "exit codes:" in run.stdout


SANDBOX_VERBS = ["create", "exec", "copy", "list", "shell", "reboot", "destroy"]


@pytest.mark.parametrize("verb", SANDBOX_VERBS)
def test_every_sandbox_verb_describes_itself(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", verb, "--help"])
    usage, _, rest = capsys.readouterr().out.partition("\n\n")
    description = rest.split("\n\n", 1)[0]
    assert "usage: integrator sandbox " + verb in usage
    assert description and not description.startswith(("positional arguments", "options")), description


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`integrator render | head -1`: head exits, the next write fails with EPIPE."""
    main(["new", "pipes", str(tmp_path / "pipes")])
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = open(write_end, "w")  # noqa: SIM115 - closed below, after main() has dup2'ed over it
    monkeypatch.setattr(sys, "stdout", closed)
    try:
        assert main(["render", str(tmp_path / "pipes")]) == 141
    finally:
        closed.close()


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_json_flag_is_accepted_after_the_verb_too() -> None:
    ns = build_parser().parse_args(["render", ".", "--json"])
    assert ns.json is True
    ns = build_parser().parse_args(["--json", "render", "."])
    assert ns.json is True


def test_bad_spec_is_one_line_on_stderr_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "service.toml").write_text('[service]\nname = "Bad-Name"\nversion = "1"\nentry = "a:b"\n')
    out_dir = tmp_path / "out"
    code = main(["render", str(tmp_path), "--out", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("integrator: error: ")
    assert "[service] name 'Bad-Name' is not valid" in err
    assert not out_dir.exists()


def test_bad_spec_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "service.toml").write_text('[service]\nname = "shop"\nversion = "1"\nentry = "a:b"\nx = 1\n')
    code = main(["--json", "render", str(tmp_path)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 2
    assert payload == {"ok": False, "exit_code": 2, "error": payload["error"]}
    assert "unknown key [service] x" in payload["error"]


def test_secret_arguments_are_name_equals_file(capsys: pytest.CaptureFixture[str]) -> None:
    from integrator.host.secrets import parse_secret_args

    assert parse_secret_args(["db=/run/db", "api=k=v"]) == {"db": Path("/run/db"), "api": Path("k=v")}
    assert main(["deploy", "x.pyz", "--secret", "db"]) == 2
    assert "--secret takes NAME=FILE, got 'db'" in capsys.readouterr().err
