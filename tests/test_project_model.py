"""The project model (project/): which files are the project's, which of them are shipped, and why not.

Data tables over real directories made here; no build, no network.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from integrator.errors import SpecError
from integrator.project.files import source_files
from integrator.project.model import check_version, load_project
from integrator.template.commands import clone

# path -> why it is not shipped ("" = shipped); None = never the project's (not even listed)
TABLE: dict[str, str | None] = {
    "wsgi.py": "",
    "settings.toml": "",
    "shop/__init__.py": "",
    "shop/static/app.css": "",
    "shop/build/plan.txt": "",  # build/ is build output only at the top
    "shop/__main__.py": "",  # in a package: `python -m shop` may need it
    "scripts/seed.py": "",
    "config/default.cfg": "",
    "instance/local.cfg": ".gitignore",
    "debug.log": ".gitignore",
    "shop/keep.log": "",  # `!shop/keep.log`
    ".env": "hidden",
    ".github/workflows/ci.yml": "hidden",
    "tests/test_shop.py": "tests",
    "shop/tests/helpers.py": "tests",
    "shop/util_test.py": "tests",
    "test_wsgi.py": "tests",
    "conftest.py": "project metadata",
    "docs/index.md": "docs",
    "requirements.txt": "project metadata",
    "requirements-dev.txt": "project metadata",
    "README.md": "project metadata",
    "Procfile": "project metadata",
    "__main__.py": "project metadata",
    ".gitignore": "hidden",
    "build/lib/x.py": None,
    "dist/shop.pyz": None,
    ".venv/bin/python": None,
    "env/pyvenv.cfg": None,  # a venv by its marker, whatever its name
    "shop/__pycache__/x.cpython-311.pyc": None,
    "stray.pyc": None,
    "shop.egg-info/PKG-INFO": None,
    "node_modules/x/index.js": None,
}


def make_tree(root: Path) -> None:
    for rel in TABLE:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / ".gitignore").write_text("instance/\n*.log\n!shop/keep.log\n")


def test_every_file_has_the_reason_the_table_gives(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = source_files(tmp_path).files
    expected = {PurePosixPath(rel): why for rel, why in TABLE.items() if why is not None}
    assert found == expected
    assert {"build", "dist", ".venv", "env (a virtual environment)", "__pycache__", "*.pyc"} <= set(
        source_files(tmp_path).left_out
    )


def test_shipped_is_what_has_no_reason_and_modules_come_from_it(tmp_path: Path) -> None:
    make_tree(tmp_path)
    project = load_project(tmp_path)
    assert [p.as_posix() for p in project.shipped] == sorted(rel for rel, why in TABLE.items() if why == "")
    assert project.modules == ["shop", "wsgi"]  # scripts/ has no __init__.py: data, not a module
    assert project.not_shipped["tests"] == 4


def test_package_include_and_exclude_override_the_rules(tmp_path: Path) -> None:
    make_tree(tmp_path)
    project = load_project(tmp_path, include=["instance/"], exclude=["scripts/", "*.cfg"])
    shipped = {p.as_posix() for p in project.shipped}
    assert "instance/local.cfg" not in shipped  # exclude wins over include
    assert "scripts/seed.py" not in shipped and "config/default.cfg" not in shipped
    assert "debug.log" not in shipped
    project = load_project(tmp_path, include=["debug.log", ".env"])
    assert {"debug.log", ".env"} <= {p.as_posix() for p in project.shipped}


def test_a_packaged_projects_files_are_relative_to_its_source_root(tmp_path: Path) -> None:
    (tmp_path / "src" / "notes" / "templates").mkdir(parents=True)
    (tmp_path / "src" / "notes" / "__init__.py").write_text("")
    (tmp_path / "src" / "notes" / "templates" / "a.html").write_text("")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "notes"\nversion = "1.0"\n')
    project = load_project(tmp_path)
    assert [p.as_posix() for p in project.shipped] == ["notes/__init__.py", "notes/templates/a.html"]
    assert project.module_files() == [("notes", PurePosixPath("notes/__init__.py"))]


@pytest.mark.parametrize(
    ("pyproject", "where"),
    [
        ('[project]\nname = "notes"\nversion = "0.1.0"\n', "[project]"),
        ('[tool.poetry]\nname = "notes"\nversion = "0.1.0"\n', "[tool.poetry]"),
    ],
)
def test_a_version_service_toml_does_not_share_is_refused_naming_both_places(
    tmp_path: Path, pyproject: str, where: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    project = load_project(tmp_path)
    check_version(project, "0.1", "service.toml")  # PEP 440: one version
    with pytest.raises(SpecError) as exc:
        check_version(project, "0.2.0", "service.toml")
    assert exc.value.message == (
        "version differs: service.toml [service] version is '0.2.0', the project's is '0.1.0' "
        f"(pyproject.toml {where} version); set service.toml's version to 0.1.0: the project's metadata "
        "is the one source"
    )


def test_clone_copies_the_source_files_the_model_sees(tmp_path: Path) -> None:
    """Ignored files (a local `.env`, `instance/`) are not copied; tests, docs and .git are."""
    src = tmp_path / "shop"
    make_tree(src)
    (src / "service.toml").write_text('[service]\nname = "shop"\nversion = "0.1.0"\nentry = "shop:app"\n')
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    result = clone(src, "billing", tmp_path / "billing")
    dest = tmp_path / "billing"
    assert not (dest / "instance").exists() and not (dest / "debug.log").exists()
    assert (dest / "shop" / "keep.log").exists() or (dest / "billing" / "keep.log").exists()
    assert (dest / "tests" / "test_shop.py").exists() and (dest / ".git" / "HEAD").exists()
    assert "instance/local.cfg (.gitignore)" in result.data["left_out"]
