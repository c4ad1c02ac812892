"""Find what `integrator init` needs in an existing project, without running any of its code.

Importing user code to find the app would run its side effects (database connections, config
files, missing environment variables), so the WSGI callable is found statically with `ast`,
the way Flask's own CLI looks for it: a `create_app`/`make_app` factory callable without
arguments, or a module-level `app`/`application`. Dependencies come from pyproject.toml or
requirements.txt, read as data.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import TemplateError

FACTORY_NAMES = ("create_app", "make_app")  # what `flask run` looks for, in this order
APP_NAMES = ("app", "application")
APP_CALLS = frozenset({"Flask", *FACTORY_NAMES})  # `app = Flask(__name__)`, `app = create_app()`
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


@dataclass(frozen=True)
class Candidate:
    """One place a WSGI app could come from."""

    entry: str  # service.toml form: "pkg.mod:create_app()" or "app:app"
    kind: str  # "factory" or "app"
    file: PurePosixPath  # relative to the project, for messages

    def describe(self) -> str:
        return f"{self.entry} ({self.file})"


@dataclass
class Project:
    """What was found in the project directory; the basis of service.toml and the bundle's plan."""

    root: Path
    layout: str  # "pyproject": the bundle builds a wheel; "flat": it packages `modules` itself
    build_file: str | None  # what the wheel is built from: pyproject.toml or setup.py
    source_root: str  # "" or "src": where the importable modules live
    modules: list[str]  # top-level modules and packages
    data_dirs: list[str]  # flat layout: templates/, static/ beside the modules
    candidates: list[Candidate]
    project_name: str | None  # pyproject [project] name
    version: str | None  # pyproject [project] version, if static
    description: str | None
    dependencies: list[str]
    dependencies_from: str | None  # "pyproject.toml", "requirements.txt" or None
    requirements: str | None  # the requirements file, if there is one
    notes: list[str] = field(default_factory=list)


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


def _read_pyproject(root: Path) -> dict[str, Any] | None:
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


def _package_files(pkg: Path, dotted: str) -> list[tuple[str, Path]]:
    found = [(dotted, pkg / "__init__.py")]
    for child in sorted(pkg.iterdir()):
        if _is_module_file(child) and child.name != "__init__.py":
            found.append((f"{dotted}.{child.stem}", child))
        elif _is_package(child) and child.name.isidentifier():
            found.extend(_package_files(child, f"{dotted}.{child.name}"))
    return found


def _called_name(node: ast.expr) -> str | None:
    """`Flask(...)` -> "Flask", `flask.Flask(...)` -> "Flask", anything else -> None."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _callable_without_arguments(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    kw_required = [d for d in args.kw_defaults if d is None]
    return len(positional) == len(args.defaults) and not kw_required


def candidates_in(module: str, tree: ast.Module, file: PurePosixPath, notes: list[str]) -> list[Candidate]:
    """The factories and app objects defined at module level (at most one app per module)."""
    found: list[Candidate] = []
    apps: list[Candidate] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in FACTORY_NAMES:
            if _callable_without_arguments(node):
                found.append(Candidate(f"{module}:{node.name}()", "factory", file))
            else:
                notes.append(
                    f"{file}: {node.name}() needs arguments, so gunicorn cannot call it; use --entry"
                )
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if not isinstance(target, ast.Name) or target.id not in APP_NAMES or value is None:
                continue
            # `application = ...` is the WSGI convention; `app` must visibly be made by Flask or a factory
            if target.id == "application" or _called_name(value) in APP_CALLS:
                apps.append(Candidate(f"{module}:{target.id}", "app", file))
    return found + apps[:1]


def find_candidates(root: Path, source_root: str, notes: list[str]) -> list[Candidate]:
    """Every candidate in the project's modules; a file that does not parse is noted and skipped."""
    base = root / source_root if source_root else root
    found: list[Candidate] = []
    for module, path in _module_files(base):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
        except (SyntaxError, UnicodeDecodeError) as exc:
            notes.append(f"{rel}: not parsed ({type(exc).__name__}); if the app is there, use --entry")
            continue
        found.extend(candidates_in(module, tree, rel, notes))
    return found


def choose_entry(candidates: list[Candidate], root: Path) -> Candidate:
    """Prefer a factory (every worker builds a fresh app, tests do the same); refuse to guess between two."""
    factories = [c for c in candidates if c.kind == "factory"]
    pool = factories or candidates
    if not pool:
        raise TemplateError(
            f"no Flask/WSGI app found in {root}: looked for create_app()/make_app() and module-level "
            "`app = Flask(...)` or `application`; pass --entry MODULE:APP"
        )
    if len(pool) > 1:
        listed = ", ".join(c.describe() for c in pool)
        raise TemplateError(f"found {len(pool)} possible apps in {root}: {listed}; choose one with --entry")
    return pool[0]


# --- the whole project ----------------------------------------------------------------------


def scan(root: Path) -> Project:
    """Look at everything `init` needs to know; reads files, never imports or changes them."""
    notes: list[str] = []
    pyproject = _read_pyproject(root)
    project_table = (pyproject or {}).get("project", {})
    if not isinstance(project_table, dict):
        raise TemplateError(f"{root / PYPROJECT}: [project] must be a table")
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
    return Project(
        root=root,
        layout=layout,
        build_file=build,
        source_root=source_root,
        modules=top_level_modules(base),
        data_dirs=[d for d in FLAT_DATA_DIRS if layout == "flat" and (base / d).is_dir()],
        candidates=find_candidates(root, source_root, notes),
        project_name=project_table.get("name") if isinstance(project_table.get("name"), str) else None,
        version=version if isinstance(version, str) else None,
        description=description if isinstance(description, str) and "\n" not in description else None,
        dependencies=dependencies,
        dependencies_from=dependencies_from,
        requirements=requirements,
        notes=notes,
    )


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
    return build_file(root, _read_pyproject(root)) is not None


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
