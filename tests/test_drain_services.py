"""The drain fixtures (tests/fixtures/drain): what they pin, and that each POST id is logged once.

In-process with Flask's test client (no bundle, no network): the app the e2e tests and
bench/drain.py deploy answers POST /post with the id and writes exactly one `{"post_id":...}` line.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.drain_services import DRAIN_FIXTURES, drain_service, pinned_gunicorn


@pytest.fixture(params=DRAIN_FIXTURES)
def project(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    name = f"drainfx{DRAIN_FIXTURES.index(request.param)}"
    return request.param, drain_service(request.param, name, tmp_path / name)


@pytest.fixture
def app(project: tuple[str, Path]) -> Iterator[Flask]:
    root = project[1]
    name = root.name
    sys.path.insert(0, str(root / "src"))
    try:
        yield importlib.import_module(name).create_app({"TESTING": True, "GREETING": "hi"})
    finally:
        sys.path.remove(str(root / "src"))
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_each_fixture_pins_its_gunicorn_in_the_project_dependencies(project: tuple[str, Path]) -> None:
    fixture, root = project
    pin = pinned_gunicorn(fixture)
    assert f'dependencies = ["flask>=3.0", "gunicorn=={pin}"]\n' in (root / "pyproject.toml").read_text()
    assert {pinned_gunicorn(f) for f in DRAIN_FIXTURES} == {"23.0.0", "27.0.1"}


def test_a_post_is_answered_with_its_id_and_logged_exactly_once(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    client = app.test_client()
    for post_id in ("a1-0", "b2-1", "a1-0"):
        response = client.post("/post", data=post_id)
        assert (response.status_code, response.get_data(as_text=True)) == (201, post_id)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"post_id":')]
    assert lines == [{"post_id": "a1-0"}, {"post_id": "b2-1"}, {"post_id": "a1-0"}]


@pytest.mark.parametrize("body", ["", "x" * 65, "a b", 'a"b', "é", "a\nb"])
def test_a_body_that_is_not_an_id_is_refused_and_not_logged(
    app: Flask, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    response = app.test_client().post("/post", data=body.encode())
    assert response.status_code == 400
    assert '"post_id"' not in capsys.readouterr().out


def test_gets_are_not_counted(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.test_client().get("/").status_code == 200
    assert '"post_id"' not in capsys.readouterr().out
