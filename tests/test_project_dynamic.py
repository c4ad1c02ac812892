"""What a project from the package index needs read without a build: a dynamic version (its sdist's
PKG-INFO, setuptools' attr, hatch's path) and the optional-dependency groups its app imports
(`[package] extras`), and how the bundle takes those extras into its resolution."""

from __future__ import annotations

import zipfile
from concurrent.futures import Future
from pathlib import Path

import pytest

from integrator.bundle.appwheel import check_extras
from integrator.bundle.locks import extra_requirements
from integrator.bundle.targets import parse_targets
from integrator.bundle.wheels import NoWheel, _result, download_error
from integrator.errors import SpecError
from integrator.project.model import load_project
from integrator.spec import parse_spec
from integrator.template.adopt import needed_extras

DYNAMIC = """\
[project]
name = "Shop_Site"
dynamic = ["version"]
dependencies = ["requests"]
{extra}
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
"""


def packaged(tmp_path: Path, extra: str = "", **files: str) -> Path:
    root = tmp_path / "shop"
    (root / "shop").mkdir(parents=True)
    (root / "pyproject.toml").write_text(DYNAMIC.format(extra=extra))
    (root / "shop" / "__init__.py").write_text('__version__ = "0.0.0.dev"\n')
    for name, text in files.items():
        (root / name.replace("__", "/")).write_text(text)
    return root


@pytest.mark.parametrize(
    ("extra", "files", "version", "where"),
    [
        ("", {}, None, None),  # nothing says it: unknown, init says so
        (
            "",
            {"PKG-INFO": "Metadata-Version: 2.1\nName: shop-site\nVersion: 2.4.2\n"},
            "2.4.2",
            "PKG-INFO Version",
        ),
        ("", {"PKG-INFO": "Metadata-Version: 2.1\nName: other\nVersion: 9.9\n"}, None, None),  # not ours
        (
            '[tool.setuptools.dynamic]\nversion = {attr = "shop.__version__"}\n',
            {},
            "0.0.0.dev",
            "shop.__version__ (pyproject.toml [tool.setuptools.dynamic])",
        ),
        (
            '[tool.hatch.version]\npath = "shop/about.py"\n',
            {"shop__about.py": 'import os\n__version__: str = "1.5"\n'},
            "1.5",
            "shop/about.py __version__ (pyproject.toml [tool.hatch.version])",
        ),
    ],
)
def test_a_dynamic_version_is_read_from_what_states_it(
    tmp_path: Path, extra: str, files: dict[str, str], version: str | None, where: str | None
) -> None:
    project = load_project(packaged(tmp_path, extra, **files))
    assert (project.version, project.version_from) == (version, where)
    assert "PKG-INFO" not in {p.as_posix() for p in project.shipped}  # metadata, never shipped


GROUPS = """
[project.optional-dependencies]
server = ["Flask>=2.2", "Flask-Admin>=2"]
locales = ["Flask-Admin[translation]"]
test = ["pytest"]
"""


@pytest.mark.parametrize(
    ("imports", "wanted"),
    [
        ("import flask\nfrom flask_admin import Admin\n", ["server"]),  # locales adds nothing more
        ("import requests\n", []),  # a base dependency
        ("from . import views\nimport os\n", []),
    ],
)
def test_init_proposes_the_fewest_extras_that_provide_what_the_entry_imports(
    tmp_path: Path, imports: str, wanted: list[str]
) -> None:
    root = packaged(tmp_path, GROUPS)
    (root / "shop" / "server_mod.py").write_text(imports)
    assert needed_extras(load_project(root), "shop.server_mod") == wanted


def wheel(tmp_path: Path, *requires: str, extras: tuple[str, ...] = ("server",)) -> Path:
    path = tmp_path / "shop_site-1.0-py3-none-any.whl"
    lines = ["Metadata-Version: 2.1", "Name: shop-site", "Version: 1.0"]
    lines += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("shop_site-1.0.dist-info/METADATA", "\n".join(lines) + "\n")
    return path


def test_the_extras_requirements_are_added_for_the_target_without_their_markers(tmp_path: Path) -> None:
    app = wheel(
        tmp_path,
        "requests",
        'flask>=2.2; extra == "server"',
        'tomli; python_version < "3.11" and extra == "server"',
        'pytest; extra == "test"',
    )
    py39, py311 = parse_targets(["3.9", "3.11"], ["x86_64"])
    assert [str(r) for r in extra_requirements(py39, app, ["server"])] == ["flask>=2.2", "tomli"]
    assert [str(r) for r in extra_requirements(py311, app, ["server"])] == ["flask>=2.2"]
    assert extra_requirements(py311, app, []) == []


def test_extras_must_be_the_wheels_and_only_for_a_packaged_project(tmp_path: Path) -> None:
    root = packaged(tmp_path)
    project = load_project(root)
    check_extras(project, wheel(tmp_path, extras=("server",)), ["Server"])  # names compare canonically
    with pytest.raises(SpecError, match=r"has no extra 'sever' \(it provides: server\)"):
        check_extras(project, wheel(tmp_path), ["sever"])
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "app.py").write_text("app = None\n")
    with pytest.raises(SpecError, match="is a flat project"):
        check_extras(load_project(flat), None, ["server"])


def test_a_default_target_a_dependency_has_no_wheel_for_is_left_out_with_a_note() -> None:
    (py312,) = parse_targets(["3.12"], ["x86_64"])
    failed: Future[list[Path]] = Future()
    failed.set_exception(NoWheel(download_error("No matching distribution found for greenlet<3.0;", py312)))
    notes: list[str] = []
    assert _result(failed, py312, True, notes.append) is None
    assert notes == ["no cp312-x86_64 target: no usable wheel of greenlet<3.0 for cp312-x86_64"]
    with pytest.raises(NoWheel, match="pin a version that has one, or drop that target"):
        _result(failed, py312, False, notes.append)  # asked for with --python: the build stops


@pytest.mark.parametrize(
    ("requires", "ok"),
    [
        (["tzdata"], True),
        (["tzdata>=2024.1,<2030"], True),
        (["buku[server]"], True),
        (["x @ https://example.org/x.whl"], False),
        (["tzdata; python_version<'3.9'"], False),
        (["--index-url=http://x"], False),
        (["tz data"], False),
    ],
)
def test_package_requires_takes_names_extras_and_versions_only(requires: list[str], ok: bool) -> None:
    data = {
        "service": {"name": "svc", "version": "1.0", "entry": "app:app"},
        "package": {"requires": requires},
    }
    if ok:
        assert parse_spec(data).package.requires == tuple(requires)
    else:
        with pytest.raises(SpecError, match=r"\[package\] requires"):
            parse_spec(data)
