"""`integrator init`: adopt an existing app found statically; write service.toml and nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from integrator.cli import main
from integrator.errors import SpecError, TemplateError
from integrator.spec import load_spec
from integrator.template.commands import init

from .test_template import tree_hashes

FIXTURES = Path(__file__).parent / "fixtures" / "adopt"


Adopt = Callable[[str], Path]


@pytest.fixture
def adopt(tmp_path: Path) -> Adopt:
    """Copy a fixture project to a temporary directory, so a test may write into it."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(FIXTURES / name, tmp_path / name))

    return copy


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --- the fixtures ----------------------------------------------------------------------------


def test_flat_app_with_requirements(adopt: Adopt, capsys: pytest.CaptureFixture[str]) -> None:
    root = adopt("guestbook")
    assert main(["--json", "init", str(root)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["entry"] == "app:app" and data["name"] == "guestbook" and data["version"] == "0.1.0"
    assert data["layout"] == "flat" and data["source_root"] == ""
    assert data["modules"] == ["app", "storage"]
    assert data["files"] == ["app.py", "storage.py", "templates/index.html"]  # not tests/helpers.py
    assert data["requirements"] == "requirements.txt" and data["dependencies_from"] == "requirements.txt"
    assert data["dependencies"] == ["Flask==3.0.3", "python-dotenv>=1.0"]
    assert any("--index-url" in note for note in data["notes"])
    assert data["candidates"] == ["app:app"]  # tests/helpers.py's app is not a candidate
    spec = load_spec(root)
    assert (spec.name, spec.entry) == ("guestbook", "app:app")


def test_flat_layout_says_what_the_bundle_will_do(adopt: Adopt) -> None:
    result = init(adopt("guestbook"))
    text = "\n".join(result.lines)
    assert "layout: flat" in text and "modules: app, storage" in text and "requirements.txt" in text
    assert "data files: templates/index.html" in text and "not packaged: 1 project metadata, 1 tests" in text


def test_package_with_factory_and_pyproject(adopt: Adopt) -> None:
    root = adopt("order-tracker")
    result = init(root)
    assert result.data["entry"] == "order_tracker:create_app()"
    # src layout: only src/ is installed, so the old top-level wsgi.py is not a candidate
    assert result.data["candidates"] == ["order_tracker:create_app()"]
    assert result.data["name"] == "order_tracker"  # from pyproject "Order-Tracker", normalised
    assert result.data["version"] == "2.3.1"
    assert result.data["layout"] == "pyproject" and result.data["source_root"] == "src"
    assert result.data["modules"] == ["order_tracker"]
    assert result.data["dependencies"] == ["flask>=3.0", "sqlalchemy>=2.0"]
    assert result.data["dependencies_from"] == "pyproject.toml" and result.data["requirements"] is None
    assert load_spec(root).service.description == "Tracks orders from the shop floor"


def test_ambiguous_project_is_one_line_error_listing_candidates(
    adopt: Adopt, capsys: pytest.CaptureFixture[str]
) -> None:
    root = adopt("two-apps")
    assert main(["init", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("integrator: error: ")
    assert "admin:app (admin.py)" in err and "public:app (public.py)" in err and "--entry" in err
    assert not (root / "service.toml").exists()


def test_entry_option_settles_ambiguity(adopt: Adopt) -> None:
    root = adopt("two-apps")
    result = init(root, name="admin_site", entry="public:app")
    assert (result.data["entry"], result.data["name"]) == ("public:app", "admin_site")
    assert load_spec(root).entry == "public:app"


@pytest.mark.parametrize("fixture", ["guestbook", "order-tracker", "two-apps"])
def test_init_never_changes_existing_files(adopt: Adopt, fixture: str) -> None:
    root = adopt(fixture)
    before = tree_hashes(root)
    try:
        init(root, entry="admin:app" if fixture == "two-apps" else None)
    finally:
        after = tree_hashes(root)
    assert set(after) - set(before) == {"service.toml"}
    assert {k: v for k, v in after.items() if k != "service.toml"} == before


@pytest.mark.parametrize("fixture", ["guestbook", "order-tracker"])
def test_found_entry_is_what_gunicorn_would_load(adopt: Adopt, fixture: str) -> None:
    """Static detection must agree with reality: resolve the entry the way gunicorn does."""
    root = adopt(fixture)
    entry = init(root).data["entry"]
    module, _, attr = entry.partition(":")
    code = (
        "import importlib, sys; from flask import Flask\n"
        f"obj = getattr(importlib.import_module({module!r}), {attr.removesuffix('()')!r})\n"
        f"app = obj() if {attr.endswith('()')!r} else obj\n"
        "assert isinstance(app, Flask), type(app)\n"
    )
    paths = [str(root / "src"), str(root)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# --- refusals ----------------------------------------------------------------------------------


def test_existing_service_toml_is_refused_and_kept(adopt: Adopt, capsys: pytest.CaptureFixture[str]) -> None:
    root = adopt("guestbook")
    (root / "service.toml").write_text("# mine\n")
    assert main(["init", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (root / "service.toml").read_text() == "# mine\n"


def test_no_app_found(tmp_path: Path) -> None:
    write(tmp_path, {"lib.py": "def helper():\n    return 1\n", "requirements.txt": "flask\n"})
    with pytest.raises(TemplateError, match=r"no Flask/WSGI app found.*--entry"):
        init(tmp_path)
    assert not (tmp_path / "service.toml").exists()


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a directory"):
        init(tmp_path / "missing")


def test_bad_derived_name_suggests_name_option(tmp_path: Path) -> None:
    root = write(tmp_path / "1st-app", {"app.py": "from flask import Flask\napp = Flask(__name__)\n"})
    with pytest.raises(SpecError, match=r"directory name '1st-app': pass --name"):
        init(root)
    assert init(root, name="first_app").data["name"] == "first_app"


def test_bad_entry_option_is_a_spec_error(adopt: Adopt) -> None:
    root = adopt("two-apps")
    with pytest.raises(SpecError, match=r"\[service\] entry"):
        init(root, entry="admin")
    assert not (root / "service.toml").exists()


# --- detection details ----------------------------------------------------------------------


def test_directory_name_is_normalised(tmp_path: Path) -> None:
    root = write(tmp_path / "My-Blog.v2", {"wsgi.py": "from blog import make\napplication = make()\n"})
    result = init(root)
    assert (result.data["name"], result.data["entry"]) == ("my_blog_v2", "wsgi:application")


def test_factory_is_preferred_over_an_app_object(tmp_path: Path) -> None:
    """Every gunicorn worker then builds its own app, as the tests do."""
    write(
        tmp_path,
        {
            "shopfront/__init__.py": "import flask\ndef create_app():\n    return flask.Flask(__name__)\n",
            "wsgi.py": "from shopfront import create_app\napp = create_app()\n",
        },
    )
    result = init(tmp_path, name="svc")
    assert result.data["entry"] == "shopfront:create_app()"
    assert sorted(result.data["candidates"]) == ["shopfront:create_app()", "wsgi:app"]


def test_factory_needing_arguments_is_not_a_candidate(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "svc/__init__.py": "def create_app(config):\n    ...\n",
            "svc/wsgi.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )
    result = init(tmp_path, name="svc")
    assert result.data["entry"] == "svc.wsgi:app"
    assert any("create_app() needs arguments" in w for w in result.warnings)


def test_factory_with_defaults_and_keyword_only_defaults_counts(tmp_path: Path) -> None:
    write(tmp_path, {"svc/__init__.py": "def create_app(test_config=None, *, debug=False):\n    ...\n"})
    assert init(tmp_path, name="svc").data["entry"] == "svc:create_app()"


def test_other_module_level_app_objects_are_not_taken_for_flask(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "cli.py": "import typer\napp = typer.Typer()\n",
            "web.py": "import flask\napp = flask.Flask(__name__)\n",
        },
    )
    assert init(tmp_path, name="svc").data["entry"] == "web:app"


def test_unparsable_file_is_noted_and_skipped(tmp_path: Path) -> None:
    write(tmp_path, {"broken.py": "def (:\n", "app.py": "from flask import Flask\napp = Flask(__name__)\n"})
    result = init(tmp_path, name="svc")
    assert result.data["entry"] == "app:app"
    assert any("broken.py: not parsed" in w for w in result.warnings)


def test_venvs_and_tests_are_not_searched(tmp_path: Path) -> None:
    flask_app = "from flask import Flask\napp = Flask(__name__)\n"
    write(
        tmp_path,
        {
            "app.py": flask_app,
            ".venv/lib/site.py": flask_app,
            "venv/pkg/__init__.py": flask_app,
            "tests/__init__.py": flask_app,
            "test_app.py": flask_app,
            "conftest.py": "def create_app():\n    ...\n",
        },
    )
    result = init(tmp_path, name="svc")
    assert result.data["candidates"] == ["app:app"]


def test_pyproject_with_dynamic_dependencies_and_requirements_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "svc"\ndynamic = ["version", "dependencies"]\n',
            "requirements.txt": "flask==3.0.3\n",
            "svc/__init__.py": "def create_app():\n    ...\n",
        },
    )
    result = init(tmp_path)
    assert result.data["layout"] == "pyproject" and result.data["dependencies_from"] == "pyproject.toml"
    assert result.data["requirements"] is None  # the wheel's metadata has the dependencies
    assert any("requirements.txt is not used by the bundle" in w for w in result.warnings)
    assert any("dynamic" in w for w in result.warnings)
    assert any("no static version" in w for w in result.warnings)


def test_pyproject_for_tool_settings_only_is_a_flat_project(tmp_path: Path) -> None:
    """`[tool.ruff]` alone declares no build: the app and requirements.txt are what count."""
    write(
        tmp_path,
        {
            "pyproject.toml": "[tool.ruff]\nline-length = 100\n",
            "requirements.txt": "flask\n",
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )
    result = init(tmp_path, name="svc")
    assert (result.data["layout"], result.data["build_file"]) == ("flat", None)
    assert result.data["requirements"] == "requirements.txt" and result.data["dependencies"] == ["flask"]


def test_setup_py_project_is_built_as_a_wheel(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "setup.py": "from setuptools import setup\nsetup(name='svc', install_requires=['flask'])\n",
            "svc/__init__.py": "def create_app():\n    ...\n",
        },
    )
    result = init(tmp_path, name="svc")
    assert (result.data["layout"], result.data["build_file"]) == ("pyproject", "setup.py")
    assert result.data["dependencies_from"] == "setup.py" and result.data["entry"] == "svc:create_app()"


def test_no_dependencies_and_no_flask_are_warned(tmp_path: Path) -> None:
    write(tmp_path, {"app.py": "application = object()\n"})
    assert any("no dependencies found" in w for w in init(tmp_path, name="svc").warnings)
    other = write(tmp_path / "other", {"app.py": "application = 1\n", "requirements.txt": "falcon\n"})
    assert any("flask is not among" in w for w in init(other, name="svc").warnings)


def test_invalid_pyproject_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project\n", "app.py": "application = 1\n"})
    with pytest.raises(TemplateError, match=r"pyproject.toml: not valid TOML"):
        init(tmp_path)
