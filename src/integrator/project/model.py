"""The project model: one answer to "what is this project and what of it is packaged".

`init` reports it, `clone` copies its source files, `bundle` packages it: a flat project's app
wheel holds exactly `shipped` (bundle/flatwheel.py), each file at its path relative to the
project, so `Path(__file__).parent / "config.json"` next to a flat `wsgi.py` is found next to
the module on the host too; a packaged project's build backend makes the wheel and `bundle`
names every file of `shipped` it left out.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import SpecError
from .files import source_files
from .metadata import (
    PYPROJECT,
    REQUIREMENTS,
    build_file,
    dependencies,
    project_metadata,
    read_pyproject,
)
from .version import dynamic_version

FLAT, PACKAGED = "flat", "pyproject"


@dataclass(frozen=True)
class Project:
    """What was found in the project directory: the basis of service.toml and of the app wheel."""

    root: Path
    packaging: str  # PACKAGED: a build backend makes the wheel; FLAT: `shipped` is the wheel
    build_file: str | None  # what the wheel is built from: pyproject.toml or setup.py
    source_root: str  # "" or "src": where the importable modules live
    shipped: tuple[PurePosixPath, ...]  # relative to the source root: what the host gets
    not_shipped: dict[str, int]  # why -> how many of the project's files, for messages
    left_out: frozenset[str]  # never the project's (caches, venvs, build output) met
    symlinks: tuple[PurePosixPath, ...]
    metadata_from: str | None  # "[project]" (PEP 621) or "[tool.poetry]": where name and version are
    project_name: str | None
    version: str | None  # the project's version, if known without a build: the one source of truth
    version_from: str | None  # where `version` was read, for messages
    requires_python: str | None  # PEP 621 requires-python, or Poetry's python dependency
    description: str | None
    dependencies: list[str]
    dependencies_from: str | None  # "pyproject.toml", "requirements.txt", "setup.py" or None
    requirements: str | None  # the requirements file the bundle installs (flat projects only)
    notes: list[str] = field(default_factory=list)

    @property
    def import_root(self) -> Path:
        return self.root / self.source_root if self.source_root else self.root

    @property
    def modules(self) -> list[str]:
        """Top-level importable names: `app` for app.py, `shop` for shop/__init__.py."""
        return sorted({dotted.split(".")[0] for dotted, _ in self.module_files()})

    @property
    def data_files(self) -> list[PurePosixPath]:
        return [p for p in self.shipped if p.suffix != ".py"]

    def module_files(self) -> list[tuple[str, PurePosixPath]]:
        """(dotted name, path below the source root) of every module the app wheel installs."""
        shipped = set(self.shipped)
        found = []
        for rel in self.shipped:
            parts = [*rel.parent.parts, rel.stem]
            if rel.suffix != ".py" or not all(p.isidentifier() for p in parts):
                continue
            if rel.name.startswith("__") and rel.name != "__init__.py":
                continue  # __main__.py runs, it is not imported
            packages = [PurePosixPath(*rel.parent.parts[: n + 1]) for n in range(len(rel.parent.parts))]
            if all(p / "__init__.py" in shipped for p in packages):
                dotted = ".".join(parts[:-1] if rel.name == "__init__.py" else parts)
                found.append((dotted, rel))
        return sorted(found)


def _source_root(root: Path) -> str:
    """`src/` layout if src/ holds a package or a module, else the project directory itself."""
    src = root / "src"
    if src.is_dir() and any(p.suffix == ".py" or (p / "__init__.py").is_file() for p in src.iterdir()):
        return "src"
    return ""


def select(
    files: dict[PurePosixPath, str], include: Sequence[str], exclude: Sequence[str]
) -> tuple[list[PurePosixPath], Counter[str]]:
    """(shipped, why -> count of the others): the rules, then `[package]` include and exclude."""
    import pathspec  # build side only

    wanted = pathspec.GitIgnoreSpec.from_lines(include)
    unwanted = pathspec.GitIgnoreSpec.from_lines(exclude)
    shipped: list[PurePosixPath] = []
    others: Counter[str] = Counter()
    for rel, why in sorted(files.items()):
        if unwanted.match_file(rel.as_posix()):
            others["[package] exclude"] += 1
        elif not why or wanted.match_file(rel.as_posix()):
            shipped.append(rel)
        else:
            others[why] += 1
    return shipped, others


def load_project(
    root: Path, *, include: Sequence[str] = (), exclude: Sequence[str] = (), skip: Iterable[Path] = ()
) -> Project:
    """Read the project as data (never import or build it). `skip`: the bundle's output directory."""
    notes: list[str] = []
    pyproject = read_pyproject(root)
    table, metadata_from = project_metadata(pyproject, root)
    build = build_file(root, pyproject)
    if pyproject is not None and build is None:
        notes.append(f"{PYPROJECT} only configures tools (no [project] or [build-system]): a flat project")
    if build and (include or exclude):
        raise SpecError(
            f"[package] include/exclude apply to a flat project; {root / build} builds this one's wheel: "
            "say what it holds there (its package data), and remove [package]"
        )
    source_root = _source_root(root) if build else ""
    tree = source_files(root, skip=skip)
    below = PurePosixPath(source_root).parts
    files = {
        PurePosixPath(*rel.parts[len(below) :]): why
        for rel, why in tree.files.items()
        if rel.parts[: len(below)] == below
    }
    shipped, others = select(files, include, exclude)
    deps, deps_from = dependencies(root, table, build is not None, notes)
    requirements = REQUIREMENTS if build is None and (root / REQUIREMENTS).is_file() else None
    if build and (root / REQUIREMENTS).is_file():
        notes.append(
            f"{REQUIREMENTS} is not used by the bundle: the wheel's own metadata lists the dependencies"
        )
    version, description, python = (table.get(k) for k in ("version", "description", "requires-python"))
    version_from = f"{PYPROJECT} {metadata_from} version" if isinstance(version, str) else None
    dynamic = dynamic_version(root, pyproject, table) if version is None else None
    if dynamic is not None:
        version, version_from = dynamic
    return Project(
        root=root,
        packaging=PACKAGED if build else FLAT,
        build_file=build,
        source_root=source_root,
        shipped=tuple(shipped),
        not_shipped=dict(sorted(others.items())),
        left_out=frozenset(tree.left_out),
        symlinks=tuple(tree.symlinks),
        metadata_from=metadata_from,
        project_name=table.get("name") if isinstance(table.get("name"), str) else None,
        version=version if isinstance(version, str) else None,
        version_from=version_from,
        requires_python=python if isinstance(python, str) else None,
        description=description if isinstance(description, str) and "\n" not in description else None,
        dependencies=deps,
        dependencies_from=deps_from,
        requirements=requirements,
        notes=notes,
    )


def same_version(a: str, b: str) -> bool:
    """PEP 440 equality (`0.1` is `0.1.0`); text equality for what is not a PEP 440 version."""
    version = importlib.import_module("pip._vendor.packaging.version")
    try:
        return bool(version.Version(a) == version.Version(b))
    except version.InvalidVersion:
        return a == b


def check_version(project: Project, spec_version: str, spec_file: str) -> None:
    """The project's own metadata is the one source of the version, when it states one."""
    if project.version is None or same_version(project.version, spec_version):
        return
    raise SpecError(
        f"version differs: {spec_file} [service] version is {spec_version!r}, the project's is "
        f"{project.version!r} ({project.version_from}); set {spec_file}'s "
        f"version to {project.version}: the project's metadata is the one source"
    )


def describe(project: Project, limit: int = 8) -> list[str]:
    """What is packaged, for `init` and `bundle` to print: modules, data files, what is not shipped."""
    data = [p.as_posix() for p in project.data_files]
    shown = ", ".join(data[:limit]) + (f" and {len(data) - limit} more" if len(data) > limit else "")
    lines = [f"modules: {', '.join(project.modules) or 'none found'}"]
    lines.append(f"data files: {shown or 'none'}")
    if project.not_shipped:
        why = ", ".join(f"{n} {reason}" for reason, n in project.not_shipped.items())
        lines.append(f"not packaged: {why}")
    if project.symlinks:
        lines.append(f"not packaged (symlinks): {', '.join(p.as_posix() for p in project.symlinks[:limit])}")
    return lines
