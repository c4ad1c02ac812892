"""A project's own metadata, read as data: name, version, dependencies, Requires-Python.

From pyproject.toml (PEP 621 `[project]`, or Poetry's `[tool.poetry]`) or requirements.txt;
never by running setup.py or a build backend.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import TemplateError

REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
SETUP_PY = "setup.py"

# pip options in a requirements file that say where wheels come from: the bundle drops them,
# because the build machine's pip configuration (a mirror, a proxy) decides that.
INDEX_OPTIONS = frozenset(
    {"-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host"}
)


def parse_toml(text: str, *, source: str) -> dict[str, Any]:
    """TOML text as data; invalid TOML is a TemplateError naming `source`."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python < 3.11: build side has tomli
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{source}: not valid TOML: {exc}") from None
    return data


def read_pyproject(root: Path) -> dict[str, Any] | None:
    path = root / PYPROJECT
    return parse_toml(path.read_text(encoding="utf-8"), source=str(path)) if path.is_file() else None


def requirement_option(line: str) -> str:
    """The pip option a stripped requirements line starts with (`--index-url=URL` -> `--index-url`), or ""."""
    return re.split(r"[\s=]", line, maxsplit=1)[0] if line.startswith("-") else ""


def read_requirements(path: Path, notes: list[str]) -> list[str]:
    """Requirement lines of a requirements file; pip options (-r, -e, --index-url) are noted, not listed."""
    found: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        option = requirement_option(line)
        if option:
            if option in INDEX_OPTIONS:
                notes.append(
                    f"{path.name}:{number}: {option} is dropped by the bundle: pip's configuration decides"
                )
            else:
                notes.append(f"{path.name}:{number}: {option} is left to pip (not listed here)")
            continue
        found.append(line)
    return found


def requirement_name(requirement: str) -> str:
    """`Flask[async]>=3.0; python_version>'3.8'` -> `flask` (PEP 503 normalised)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def project_metadata(pyproject: dict[str, Any] | None, root: Path) -> tuple[dict[str, Any], str | None]:
    """The PEP 621 [project] table, or Poetry's [tool.poetry] in the same form, and its name.

    Poetry keeps name, version and dependencies (a table, `python` among them) in its own
    table; reading them here keeps the version in one place for Poetry projects too.
    """
    data = pyproject or {}
    table = data.get("project")
    if table is not None:
        if not isinstance(table, dict):
            raise TemplateError(f"{root / PYPROJECT}: [project] must be a table")
        return table, "[project]"
    poetry = data.get("tool", {}).get("poetry") if isinstance(data.get("tool"), dict) else None
    if not isinstance(poetry, dict):
        return {}, None
    deps = poetry.get("dependencies", {})
    if not isinstance(deps, dict):
        raise TemplateError(f"{root / PYPROJECT}: [tool.poetry.dependencies] must be a table")
    table = {k: poetry[k] for k in ("name", "version", "description") if k in poetry}
    table["dependencies"] = [_poetry_requirement(n, c) for n, c in deps.items() if n.lower() != "python"]
    python = deps.get("python", deps.get("Python"))
    if isinstance(python, str):
        table["requires-python"] = python
    return table, "[tool.poetry]"


def _poetry_requirement(name: str, constraint: object) -> str:
    """`flask = "^3.0"` -> "flask ^3.0" (shown, not resolved: the wheel build does that)."""
    version = constraint.get("version") if isinstance(constraint, dict) else constraint
    return f"{name} {version}" if isinstance(version, str) and version != "*" else name


def build_file(root: Path, pyproject: dict[str, Any] | None) -> str | None:
    """The file a wheel of the project is built from, or None for a flat project.

    A pyproject.toml counts only if it declares a build ([project] or [build-system]); many
    flat apps have one just for tool settings (ruff, black), and building a wheel from that
    would leave their requirements.txt unused.
    """
    if pyproject is not None and {"project", "build-system"} & set(pyproject):
        return PYPROJECT
    if (root / SETUP_PY).is_file():
        return SETUP_PY
    return None


def is_packaged(root: Path) -> bool:
    """Whether the bundle builds the project's own wheel (see build_file) or packages it as flat."""
    return build_file(root, read_pyproject(root)) is not None


def dependencies(
    root: Path, project_table: dict[str, Any], packaged: bool, notes: list[str]
) -> tuple[list[str], str | None]:
    """(requirements, the file they come from): where the bundle will take them from."""
    if not packaged:
        if (root / REQUIREMENTS).is_file():
            return read_requirements(root / REQUIREMENTS, notes), REQUIREMENTS
        return [], None
    if isinstance(project_table.get("dependencies"), list):
        return [str(d) for d in project_table["dependencies"]], PYPROJECT
    if "dependencies" in project_table.get("dynamic", []):
        notes.append(f"{PYPROJECT} declares dependencies as dynamic: the wheel build resolves them")
        return [], PYPROJECT
    if (root / SETUP_PY).is_file():
        notes.append(f"dependencies are in {SETUP_PY} (not read here): the wheel build resolves them")
        return [], SETUP_PY
    return [], PYPROJECT
