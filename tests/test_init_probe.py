"""`init` picks health_path by asking the app, when the project has its own venv to run it with.

Real venvs (`python -m venv --without-pip`, a second or two) and real requests through the bundle
preflight's driver; the apps are PEP 3333 functions, so no dependency needs installing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from integrator.spec import load_spec
from integrator.template.commands import init

ONLY_HEALTH = """\
def application(environ, start_response):
    ok = environ["PATH_INFO"] == "/health" and environ["HTTP_X_FORWARDED_PROTO"] == "https"
    start_response("200 OK" if ok else "404 Not Found", [("Content-Type", "text/plain")])
    return [b"ok" if ok else b"no"]
"""


def project(tmp_path: Path, source: str, venv: bool = True) -> Path:
    root = tmp_path / "svc"
    root.mkdir()
    (root / "hello.py").write_text(source)
    if venv:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    return root


def test_the_first_path_that_answers_2xx_is_the_health_path(tmp_path: Path) -> None:
    """The source has no route init can read (a PEP 3333 function): only asking finds /health."""
    root = project(tmp_path, ONLY_HEALTH)
    result = init(root, name="svc")
    assert load_spec(root).http.health_path == "/health"
    assert result.data["health_probe"] == (
        "asked the app with .venv/bin/python: /healthz -> 404, /health -> 200, / -> 404"
    )
    assert any("health_path: /health (asked the app" in line for line in result.lines)
    assert not any("no route" in w for w in result.warnings)


def test_an_app_that_does_not_import_keeps_the_static_choice_and_says_why(tmp_path: Path) -> None:
    root = project(tmp_path, "raise RuntimeError('needs DATABASE_URL')\n" + ONLY_HEALTH)
    result = init(root, name="svc")
    assert load_spec(root).http.health_path == "/healthz"
    assert any(
        "importing hello:application with .venv/bin/python failed: RuntimeError: needs DATABASE_URL" in w
        for w in result.warnings
    ), result.warnings


def test_without_a_venv_in_the_project_and_without_install_nothing_is_run(tmp_path: Path) -> None:
    root = project(tmp_path, "open('ran', 'w').write('x')\n" + ONLY_HEALTH, venv=False)
    result = init(root, name="svc")
    assert result.data["health_probe"] is None and not (root / "ran").exists()
    assert load_spec(root).http.health_path == "/healthz"


@pytest.mark.network
def test_without_a_venv_init_installs_the_app_as_the_preflight_does_and_asks_it(tmp_path: Path) -> None:
    """What the CLI does without --no-probe: app wheel + gunicorn from the index into a throwaway venv."""
    root = project(tmp_path, ONLY_HEALTH, venv=False)
    result = init(root, name="svc", install=True)
    assert load_spec(root).http.health_path == "/health"
    line = str(result.data["health_probe"])
    assert line.startswith("asked the app with a throwaway cp3") and line.endswith(
        "venv: /healthz -> 404, /health -> 200, / -> 404"
    ), line
    assert not any(p.name == "pyvenv.cfg" for p in root.rglob("*"))  # nothing left in the project


@pytest.mark.network
def test_an_app_that_cannot_be_installed_keeps_the_static_choice_and_says_why(tmp_path: Path) -> None:
    root = project(tmp_path, ONLY_HEALTH, venv=False)
    (root / "requirements.txt").write_text("gunicorn==0.0.1\n")
    result = init(root, name="svc", install=True)
    assert load_spec(root).http.health_path == "/healthz"
    assert any("init could not install the app to ask it" in w for w in result.warnings), result.warnings
