"""Find the app `integrator init` needs in an existing project, without running any of its code.

Importing user code to find the app would run its side effects (database connections, config
files, missing environment variables), so the WSGI callable is found statically with `ast`,
in every common shape (see shapes.py), in the modules the project model says the app wheel
installs (project/model.py): what init reads is what the bundle packages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path, PurePosixPath

from ..project.metadata import read_pyproject, requirement_name
from ..project.model import Project
from .procfile import procfile_candidates
from .shapes import (
    PROCFILE,
    Found,
    Module,
    Resolver,
    candidates_in,
    module_facts,
    read_module,
)


def find_candidates(project: Project) -> tuple[Found, list[str]]:
    """Every candidate in the project's modules and its Procfile, and notes (a file that does not parse)."""
    notes: list[str] = []
    modules: dict[str, Module] = {}
    prefix = PurePosixPath(project.source_root) if project.source_root else PurePosixPath()
    for name, below in project.module_files():
        rel = prefix / below
        try:
            source = (project.root / rel).read_text(encoding="utf-8")
            tree = ast.parse(source, filename=str(rel))
        except (SyntaxError, UnicodeDecodeError) as exc:
            notes.append(f"{rel}: not parsed ({type(exc).__name__}); if the app is there, use --entry")
            continue
        modules[name] = read_module(name, rel, tree)
    resolver = Resolver(modules)
    found = Found()
    for module in modules.values():
        candidates_in(module, resolver, found)
        module_facts(module, found)
    procfile = project.root / PROCFILE
    if procfile.is_file():
        text = procfile.read_text(encoding="utf-8", errors="replace")
        notes.extend(procfile_candidates(text, set(modules), resolver, found))
    notes.extend(f"{item}, so gunicorn cannot call it; use --entry" for item in found.needs_arguments)
    return found, notes


def normalise_name(raw: str) -> str:
    """A project or directory name in service-name form: `Order-Tracker` -> `order_tracker`."""
    return re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_")


FLASK_KINDS = frozenset({"factory", "app", "re-export", "procfile"})


def flask_static_dir(project: Project, module: str) -> str | None:
    """`static/` beside the module that makes a Flask app (its default static folder), relative to
    the project, when it holds files the model ships: what init proposes for [static]."""
    files = dict(project.module_files())
    if module not in files:
        return None
    prefix = PurePosixPath(project.source_root) if project.source_root else PurePosixPath()
    static = files[module].parent / "static"
    if any(static in rel.parents for rel in project.shipped):
        return (prefix / static).as_posix()
    return None


def _imported_tops(path: Path) -> set[str]:
    """Top-level names a module imports absolutely (`import flask_admin.contrib` -> flask_admin)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0].lower() for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0].lower())
    return found


def needed_extras(project: Project, module: str) -> list[str]:
    """The PEP 621 optional-dependency groups that provide what the entry's module imports and the
    base dependencies do not (buku's `server` for `bukuserver.server`), the fewest groups that do:
    init writes them to `[package] extras`, or the app would not import on the host. Names are
    compared as distributions are usually imported (`Flask-Admin` -> `flask_admin`)."""
    files = dict(project.module_files())
    table = (read_pyproject(project.root) or {}).get("project")
    groups = table.get("optional-dependencies") if isinstance(table, dict) else None
    if module not in files or not isinstance(groups, dict):
        return []
    prefix = project.root / project.source_root if project.source_root else project.root
    imports = _imported_tops(prefix / files[module])
    covered = {requirement_name(d).replace("-", "_") for d in project.dependencies}
    provides = {
        group: imports & {requirement_name(str(r)).replace("-", "_") for r in requirements}
        for group, requirements in groups.items()
        if isinstance(requirements, list)
    }
    chosen = []
    for group in sorted(provides, key=lambda g: (-len(provides[g]), g)):  # the fewest groups
        if provides[group] - covered:
            chosen.append(group)
            covered |= provides[group]
    return sorted(chosen)
