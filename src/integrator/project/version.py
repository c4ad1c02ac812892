"""A project's version when pyproject.toml declares it dynamic: read as data, never built.

An sdist from the package index carries its metadata in `PKG-INFO` (core metadata, written by
the build that made it): the version it states is the one its wheel gets. A checkout has no
PKG-INFO; then the two common static sources are read: setuptools' `version = {attr = "m.__version__"}`
and hatch's `[tool.hatch.version] path`, each a string literal assigned in a module (`ast`, the
module is not imported). Anything else (a VCS tag, code) stays unknown: `init` says so.
"""

from __future__ import annotations

import ast
import email.parser
from pathlib import Path
from typing import Any

PKG_INFO = "PKG-INFO"


def _canonical(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def pkg_info_version(root: Path, name: object) -> str | None:
    """Version: of PKG-INFO when its Name is the project's (an unpacked sdist), else None."""
    path = root / PKG_INFO
    if not path.is_file() or not isinstance(name, str):
        return None
    headers = email.parser.Parser().parsestr(path.read_text(encoding="utf-8", errors="replace"), True)
    version = headers.get("Version")
    if _canonical(str(headers.get("Name", ""))) != _canonical(name) or not version:
        return None
    return str(version).strip()


def literal_assignment(path: Path, variable: str) -> str | None:
    """The string literal `variable = "..."` assigns at the top of a module, if it does."""
    if not path.is_file():
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        named = any(isinstance(t, ast.Name) and t.id == variable for t in targets)
        if named and isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
    return None


def _attr_version(root: Path, attr: str) -> str | None:
    """setuptools `attr = "pkg.mod.__version__"`: the literal in pkg/mod.py, pkg/mod/__init__.py (or src/)."""
    module, _, variable = attr.rpartition(".")
    parts = module.split(".") if module else []
    if not parts or not variable:
        return None
    for base in (root, root / "src"):
        for path in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            found = literal_assignment(path, variable)
            if found is not None:
                return found
    return None


def dynamic_version(
    root: Path, pyproject: dict[str, Any] | None, table: dict[str, Any]
) -> tuple[str, str] | None:
    """(version, where it was read) for a `dynamic = ["version"]` project, or None when unknown."""
    if "version" not in table.get("dynamic", []) or pyproject is None:
        return None
    found = pkg_info_version(root, table.get("name"))
    if found:
        return found, f"{PKG_INFO} Version"
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    setuptools_version = tool.get("setuptools", {}).get("dynamic", {}).get("version", {})
    attr = setuptools_version.get("attr") if isinstance(setuptools_version, dict) else None
    if isinstance(attr, str) and (found := _attr_version(root, attr)):
        return found, f"{attr} (pyproject.toml [tool.setuptools.dynamic])"
    path = tool.get("hatch", {}).get("version", {}).get("path")
    if isinstance(path, str) and (found := literal_assignment(root / path, "__version__")):
        return found, f"{path} __version__ (pyproject.toml [tool.hatch.version])"
    return None
