"""Find what `integrator init` needs in an existing project, without running any of its code.

Importing user code to find the app would run its side effects (database connections, config
files, missing environment variables), so the WSGI callable is found statically with `ast`,
in every common shape (see shapes.py). Name, version and dependencies come from pyproject.toml
(PEP 621 `[project]`, or Poetry's `[tool.poetry]`) or requirements.txt, read as data.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import TemplateError
from .procfile import procfile_candidates
from .shapes import (
    PROCFILE,
    Candidate,
    Found,
    Module,
    Resolver,
    candidates_in,
    module_facts,
    read_module,
)

# Never app code: tests, environments, build products, tool caches.
SKIP_DIRS = frozenset(
    {
        "tests",
        "test",
        "testing",
        "docs",
        ".venv",
        "venv",
        "env",
        ".git",
        ".hg",
        "__pycache__",
        "build",
        "dist",
    }
    | {"node_modules", ".tox", ".nox", ".pytest_cache", ".mypy_cache", ".ruff_cache", "site-packages"}
)
SKIP_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py"})
FLAT_DATA_DIRS = ("templates", "static")  # Flask finds these beside a top-level module
REQUIREMENTS = "requirements.txt"
PYPROJECT = "pyproject.toml"
SETUP_PY = "setup.py"


@dataclass
class Project:
    """What was found in the project directory; the basis of service.toml and the bundle's plan."""

    root: Path
    layout: str  # "pyproject": the bundle builds a wheel; "flat": it packages `modules` itself
    build_file: str | None  # what the wheel is built from: pyproject.toml or setup.py
    source_root: str  # "" or "src": where the importable modules live
    modules: list[str]  # top-level modules and packages
    data_dirs: list[str]  # flat layout: templates/, static/ beside the modules
    found: Found  # the app's candidates, and what else the modules said
    metadata_from: str | None  # "[project]" (PEP 621) or "[tool.poetry]": where name and version are
    project_name: str | None
    version: str | None  # the project's version, if static: the one source of truth
    requires_python: str | None  # PEP 621 requires-python, or Poetry's python dependency
    description: str | None
    dependencies: list[str]
    dependencies_from: str | None  # "pyproject.toml", "requirements.txt" or None
    requirements: str | None  # the requirements file, if there is one
    notes: list[str] = field(default_factory=list)

    @property
    def candidates(self) -> list[Candidate]:
        return self.found.candidates


# --- pyproject and requirements ---------------------------------------------------------


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


# pip options in a requirements file that say where wheels come from: the bundle drops them,
# because the build machine's pip configuration (a mirror, a proxy) decides that.
INDEX_OPTIONS = frozenset(
    {"-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host"}
)


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


# --- modules and the app ------------------------------------------------------------------


def _is_package(path: Path) -> bool:
    return path.is_dir() and path.name not in SKIP_DIRS and (path / "__init__.py").is_file()


def _is_module_file(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and name.endswith(".py")
        and name not in SKIP_FILES
        and not name.startswith("__")  # __init__ is its package; __main__ runs, it is not imported
        and not name.startswith("test_")
        and not name.endswith("_test.py")
        and name[:-3].isidentifier()
    )


def _source_root(root: Path) -> str:
    """`src/` layout if src/ holds a package or module, else the project directory itself."""
    src = root / "src"
    if src.is_dir() and any(_is_package(p) or _is_module_file(p) for p in src.iterdir()):
        return "src"
    return ""


def top_level_modules(base: Path) -> list[str]:
    """Importable names directly below `base`: `app` for app.py, `shop` for shop/__init__.py."""
    names = [p.stem for p in base.iterdir() if _is_module_file(p)]
    names += [p.name for p in base.iterdir() if _is_package(p) and p.name.isidentifier()]
    return sorted(set(names))


def _module_files(base: Path) -> list[tuple[str, Path]]:
    """(dotted module name, file) for every module in `base`'s top-level modules and packages."""
    found: list[tuple[str, Path]] = []
    for name in top_level_modules(base):
        single = base / f"{name}.py"
        if single.is_file():
            found.append((name, single))
        else:
            found.extend(_package_files(base / name, name))
    return found


def module_names(project: Project) -> set[str]:
    """Every dotted module name the project installs: what an entry may name."""
    base = project.root / project.source_root if project.source_root else project.root
    return {name for name, _ in _module_files(base)}


def _package_files(pkg: Path, dotted: str) -> list[tuple[str, Path]]:
    found = [(dotted, pkg / "__init__.py")]
    for child in sorted(pkg.iterdir()):
        if _is_module_file(child) and child.name != "__init__.py":
            found.append((f"{dotted}.{child.stem}", child))
        elif _is_package(child) and child.name.isidentifier():
            found.extend(_package_files(child, f"{dotted}.{child.name}"))
    return found


def find_candidates(root: Path, source_root: str, notes: list[str]) -> Found:
    """Every candidate in the project's modules and its Procfile; a file that does not parse is noted."""
    base = root / source_root if source_root else root
    modules: dict[str, Module] = {}
    for name, path in _module_files(base):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        except (SyntaxError, UnicodeDecodeError) as exc:
            notes.append(f"{rel}: not parsed ({type(exc).__name__}); if the app is there, use --entry")
            continue
        modules[name] = read_module(name, rel, tree)
    resolver = Resolver(modules)
    found = Found()
    for module in modules.values():
        candidates_in(module, resolver, found)
        module_facts(module, found)
    procfile = root / PROCFILE
    if procfile.is_file():
        text = procfile.read_text(encoding="utf-8", errors="replace")
        notes.extend(procfile_candidates(text, set(modules), resolver, found))
    notes.extend(f"{item}, so gunicorn cannot call it; use --entry" for item in found.needs_arguments)
    return found


# --- the whole project ----------------------------------------------------------------------


def scan(root: Path) -> Project:
    """Look at everything `init` needs to know; reads files, never imports or changes them."""
    notes: list[str] = []
    pyproject = read_pyproject(root)
    project_table, metadata_from = project_metadata(pyproject, root)
    build = build_file(root, pyproject)
    packaged = build is not None
    if pyproject is not None and build is None:
        notes.append(f"{PYPROJECT} only configures tools (no [project] or [build-system]): a flat project")
    source_root = _source_root(root)
    base = root / source_root if source_root else root
    dependencies, dependencies_from = _dependencies(root, project_table, packaged, notes)
    requirements = REQUIREMENTS if (root / REQUIREMENTS).is_file() else None
    if packaged and requirements:
        notes.append(
            f"{REQUIREMENTS} is not used by the bundle: the wheel's own metadata lists the dependencies"
        )
        requirements = None
    layout = "pyproject" if packaged else "flat"

    version = project_table.get("version")
    description = project_table.get("description")
    requires_python = project_table.get("requires-python")
    return Project(
        root=root,
        layout=layout,
        build_file=build,
        source_root=source_root,
        modules=top_level_modules(base),
        data_dirs=[d for d in FLAT_DATA_DIRS if layout == "flat" and (base / d).is_dir()],
        found=find_candidates(root, source_root, notes),
        metadata_from=metadata_from,
        project_name=project_table.get("name") if isinstance(project_table.get("name"), str) else None,
        version=version if isinstance(version, str) else None,
        requires_python=requires_python if isinstance(requires_python, str) else None,
        description=description if isinstance(description, str) and "\n" not in description else None,
        dependencies=dependencies,
        dependencies_from=dependencies_from,
        requirements=requirements,
        notes=notes,
    )


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


def _dependencies(
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


def normalise_name(raw: str) -> str:
    """A project or directory name in service-name form: `Order-Tracker` -> `order_tracker`."""
    return re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_")
