"""`bundle`'s preflight: the wheelhouse installed in a throwaway venv, the entry imported, the
health path asked for as nginx would, before anything is written (bundle/preflight.py).

The apps are PEP 3333 functions without dependencies, so each build downloads only gunicorn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrator.bundle.locks import TargetLock
from integrator.bundle.preflight import choose_target
from integrator.bundle.targets import TargetSpec
from integrator.cli import main

# Answers 200 on /health only, and only when asked as nginx asks: our Host, https.
APP = """\
def application(environ, start_response):
    asked_as_nginx_asks = environ["HTTP_HOST"] == "hello.example" and environ["wsgi.url_scheme"] == "https"
    if not asked_as_nginx_asks:
        start_response("421 Misdirected Request", [("Content-Type", "text/plain")])
    elif environ["PATH_INFO"] == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def write_app(root: Path, module: str, health_path: str | None = None) -> Path:
    (root / "src" / "hello").mkdir(parents=True)
    (root / "src" / "hello" / "__init__.py").write_text(module)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "hello"\nversion = "0.1.0"\nrequires-python = ">=3.9"\ndependencies = []\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n'
    )
    http = '[http]\nserver_names = ["hello.example"]\n'
    if health_path:
        http += f'health_path = "{health_path}"\n'
    (root / "service.toml").write_text(
        f'[service]\nname = "hello"\nversion = "0.1.0"\nentry = "hello:application"\n\n{http}'
    )
    return root


def _bundle(project: Path, out: Path, *options: str, as_json: bool = False) -> int:
    """`integrator [--json] bundle PROJECT -o OUT --python 3.11 OPTIONS`: one target, one download."""
    verb = ["--json", "bundle"] if as_json else ["bundle"]
    return main([*verb, str(project), "-o", str(out), "--python", "3.11", *options])


@pytest.mark.network
def test_a_health_path_answering_404_is_refused_naming_it_and_one_that_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    assert _bundle(write_app(tmp_path / "hello", APP), out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "GET /healthz" in err[-1] and "status 404" in err[-1], err
    assert 'set [http] health_path = "/health"' in err[-1] and "--no-preflight" in err[-1], err
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.network
def test_an_app_that_raises_at_import_is_refused_with_the_exception(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    raising = "import os\n\nDATABASE = os.environ['DATABASE_URL']\n" + APP
    assert _bundle(write_app(tmp_path / "hello", raising, "/health"), out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "importing hello:application failed: KeyError: 'DATABASE_URL'" in err[-1], err
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.network
def test_a_good_app_passes_and_the_verdict_is_in_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    assert _bundle(write_app(tmp_path / "hello", APP, "/health"), out, as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["preflight"]["ran"] is True and data["preflight"]["target"] == "cp311-x86_64"
    assert data["preflight"]["answer"] == "GET /health -> 200"
    assert (out / "hello-0.1.0.pyz").is_file()


@pytest.mark.network
def test_no_preflight_builds_an_app_whose_health_path_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    assert _bundle(write_app(tmp_path / "hello", APP), out, "--no-preflight") == 0
    assert "preflight skipped (--no-preflight)" in capsys.readouterr().out
    assert (out / "hello-0.1.0.pyz").is_file()


def test_the_first_target_with_an_interpreter_here_is_used_and_the_others_named() -> None:
    locks = [TargetLock(TargetSpec(p, "x86_64"), ()) for p in ("3.9", "3.11", "3.12")]
    here = {"3.11": "/usr/bin/python3.11", "3.12": "/usr/bin/python3.12"}
    lock, python, notes = choose_target(locks, here.get, machine="x86_64")
    assert lock is locks[1] and python == "/usr/bin/python3.11"
    assert notes == ["no CPython 3.9 on x86_64 here for cp39-x86_64"]
    assert choose_target(locks, here.get, machine="aarch64")[0] is None
