"""[package] build: `bundle` runs the project's build command before it packages (bundle/buildstep.py).

The fast tests run the command itself (a real subprocess); the `network` ones build real bundles
(the first collection needs the index): what the command writes reaches [static] and the app
wheel, and a failing command stops the bundle before anything is written.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from integrator.bundle.buildstep import build_environment, run_build
from integrator.cli import main
from integrator.errors import BundleError
from integrator.spec import parse_spec

APP = """\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""
# Proves where it runs: the throwaway venv (sys.prefix, gunicorn importable), the project
# directory (relative paths), with [env]; writes a static file and a data file for the app wheel.
BUILD = (
    "import gunicorn, os, pathlib, sys; "
    "pathlib.Path('static').mkdir(); "
    "pathlib.Path('static/built.txt').write_text(os.environ['HELLO_GREETING'] + ' ' + sys.prefix); "
    "pathlib.Path('generated.json').write_text('{}'); print('built')"
)


def spec_with(build: list[str]) -> dict[str, dict[str, object]]:
    return {
        "service": {"name": "hello", "version": "0.1.0", "entry": "wsgi:application"},
        "http": {"health_path": "/"},
        "env": {"HELLO_GREETING": "hi there"},
        "package": {"build": build},
        "static": {"/static/": "static"},
    }


def write_flat(root: Path, build: list[str]) -> Path:
    root.mkdir()
    (root / "wsgi.py").write_text(APP)
    lines = ["[service]", 'name = "hello"', 'version = "0.1.0"', 'entry = "wsgi:application"', ""]
    lines += ["[http]", 'health_path = "/"', "", "[env]", 'HELLO_GREETING = "hi there"', ""]
    lines += ["[package]", f"build = {json.dumps(build)}", "", "[static]", '"/static/" = "static"']
    (root / "service.toml").write_text("\n".join(lines) + "\n")
    return root


def test_the_venv_comes_first_on_path_and_env_applies() -> None:
    spec = parse_spec(spec_with(["python", "x.py"]))
    env = build_environment(spec, Path("/w/venv"), {"PATH": "/usr/bin", "HOME": "/h", "PYTHONHOME": "/x"})
    assert env["PATH"] == "/w/venv/bin:/usr/bin" and env["HOME"] == "/h" and "PYTHONHOME" not in env
    assert env["HELLO_GREETING"] == "hi there" and env["VIRTUAL_ENV"] == "/w/venv"


def test_a_failing_command_is_one_line_naming_it_with_its_last_output(tmp_path: Path) -> None:
    spec = parse_spec(spec_with(["sh", "-c", "echo one; echo two >&2; exit 3"]))
    said: list[str] = []
    with pytest.raises(BundleError) as err:
        run_build(spec, tmp_path, tmp_path / "venv", {"PATH": "/usr/bin:/bin"}, said.append)
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 1
    assert message.startswith("[package] build `sh -c 'echo one; echo two >&2; exit 3'` failed (exit 3): two")
    assert said[-2:] == ["build: one", "build: two"]


def test_a_command_that_is_not_there_is_named(tmp_path: Path) -> None:
    spec = parse_spec(spec_with(["no-such-program-here"]))
    with pytest.raises(BundleError, match="no-such-program-here is neither in the project's dependencies"):
        run_build(spec, tmp_path, tmp_path / "venv", {"PATH": "/usr/bin:/bin"}, lambda _: None)


def test_a_command_runs_in_the_project_and_says_so(tmp_path: Path) -> None:
    spec = parse_spec(spec_with(["sh", "-c", 'printf "%s" "$HELLO_GREETING" > out.txt']))
    said: list[str] = []
    line = run_build(spec, tmp_path, tmp_path / "venv", {"PATH": "/usr/bin:/bin"}, said.append)
    assert (tmp_path / "out.txt").read_text() == "hi there"
    assert line.startswith("sh -c ") and " ran (" in line and said[0].startswith("build: running sh -c")


@pytest.mark.network
def test_bundle_runs_the_build_before_it_collects_static_files_and_the_app_wheel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_flat(tmp_path / "hello", ["python", "-c", BUILD])
    out = tmp_path / "dist"
    assert main(["--json", "bundle", str(project), "-o", str(out), "--python", "3.11"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["build"].startswith("python -c ") and "build: running python -c" in captured.err
    assert "generated.json" in data["app_files"]  # the app wheel was collected after the build
    with zipfile.ZipFile(out / "hello-0.1.0.pyz") as pyz:
        built = pyz.read("payload/static/static/built.txt").decode()
    greeting, _, prefix = built.partition(" /")
    assert greeting == "hi there" and "integrator-bundle-" in prefix  # [env], the throwaway venv
    assert not prefix.startswith(sys.prefix.lstrip("/"))


@pytest.mark.network
def test_a_failing_build_stops_the_bundle_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = ["python", "-c", "import sys; print('collecting'); sys.exit('STATIC_ROOT is not set')"]
    project = write_flat(tmp_path / "hello", failing)
    out = tmp_path / "dist"
    assert main(["bundle", str(project), "-o", str(out), "--python", "3.11"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "integrator: build: STATIC_ROOT is not set" in err  # the command's last lines, then one error
    assert "[package] build `python -c" in err[-1], err
    assert "failed (exit 1): STATIC_ROOT is not set" in err[-1], err
    assert not out.exists() or not list(out.iterdir())
