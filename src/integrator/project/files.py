"""Which files of a project are its source, and which of those the app needs on a host.

Two kinds of exclusion, each said once, so `clone` (copies the source) and `bundle` (ships the
app) cannot disagree:
- never the project's (neither cloned nor shipped): caches, virtual environments (a directory
  holding `pyvenv.cfg`), build output at the top, bytecode;
- the project's but not the app's (cloned, not shipped; `[package] include` brings them back):
  what a `.gitignore` names, version control, tests, docs, hidden files (`.env`!), the project's
  own build and deploy metadata.
Symlinks are never followed: they are reported, neither copied nor shipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CACHE_DIRS = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox", ".nox", ".eggs"}
    | {"node_modules", "site-packages", "htmlcov"}
)
VENV_DIRS = frozenset({".venv", "venv"})  # and any directory with a pyvenv.cfg
BUILD_DIRS = frozenset({"build", "dist"})  # at the project's top
BYTECODE = (".pyc", ".pyo")

VCS_DIRS = frozenset({".git", ".hg", ".svn"})
TEST_DIRS = frozenset({"tests", "test", "testing"})
DOC_DIRS = frozenset({"docs"})  # at the top
TOOL_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py"})  # anywhere
# The project's build and deploy metadata, at its top: integrator reads or replaces each of them.
METADATA_FILES = frozenset(
    {"service.toml", "pyproject.toml", "setup.cfg", "MANIFEST.in", "Procfile", "runtime.txt", "tox.ini"}
    | {"poetry.lock", "Pipfile", "Pipfile.lock", "uv.lock", "Dockerfile", "docker-compose.yml", "Makefile"}
    | {"__init__.py", "__main__.py"}  # a top-level package marker or script is nothing to import
    | {"PKG-INFO"}  # an unpacked sdist's core metadata (project/version.py reads it)
)
METADATA_PREFIXES = (
    "requirements",
    "constraints",
    "README",
    "LICENSE",
    "CHANGELOG",
    "COPYING",
    "AUTHORS",
    "CONTRIBUTORS",
    "CHANGES",
    "SECURITY",
    "CODE_OF_CONDUCT",
)
GITIGNORE = ".gitignore"


@dataclass
class SourceFiles:
    """The project's files (relative paths), each with why it is not shipped ("" when it is)."""

    files: dict[PurePosixPath, str] = field(default_factory=dict)
    left_out: set[str] = field(default_factory=set)  # never the project's: names met, for messages
    symlinks: list[PurePosixPath] = field(default_factory=list)


def never_ours(name: str, path: Path, top: bool) -> str | None:
    """The `left_out` label of a directory that is never part of the project, or None."""
    if name in CACHE_DIRS or name in VENV_DIRS or (top and name in BUILD_DIRS):
        return name
    if name.endswith(".egg-info"):
        return "*.egg-info"
    if (path / "pyvenv.cfg").is_file():
        return f"{name} (a virtual environment)"
    return None


def not_shipped(rel: PurePosixPath, is_dir: bool) -> str:
    """Why a file or directory of the project is not part of the app on a host, or ""."""
    name, top = rel.name, len(rel.parts) == 1
    if name in VCS_DIRS:
        return "version control"
    if name.startswith("."):
        return "hidden"
    if is_dir:
        if name in TEST_DIRS:
            return "tests"
        return "docs" if top and name in DOC_DIRS else ""
    if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
        return "tests"
    if name in TOOL_FILES:
        return "project metadata"
    if top and (name in METADATA_FILES or name.startswith(METADATA_PREFIXES)):
        return "project metadata"
    return ""


class Ignored:
    """The `.gitignore` files met so far, each applying below its own directory."""

    def __init__(self) -> None:
        self._specs: list[tuple[PurePosixPath, object]] = []

    def read(self, directory: Path, rel: PurePosixPath) -> None:
        path = directory / GITIGNORE
        if path.is_file() and not path.is_symlink():
            import pathspec  # build side only

            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            self._specs.append((rel, pathspec.GitIgnoreSpec.from_lines(lines)))

    def __call__(self, rel: PurePosixPath, is_dir: bool) -> bool:
        for base, spec in self._specs:
            if base.parts == rel.parts[: len(base.parts)] and rel != base:
                sub = PurePosixPath(*rel.parts[len(base.parts) :]).as_posix() + ("/" if is_dir else "")
                if spec.match_file(sub):  # type: ignore[attr-defined]
                    return True
        return False


def source_files(root: Path, *, skip: Iterable[Path] = (), vcs: bool = False) -> SourceFiles:
    """Every file below `root` but what is never the project's (and `skip`: the bundle's output).

    `vcs`: also the files of .git/.hg/.svn (clone copies them; nothing ships them)."""
    found = SourceFiles()
    ignored = Ignored()
    skipped = {p.resolve() for p in skip}
    dir_why: dict[PurePosixPath, str] = {}  # a directory's reason holds for everything below it
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = PurePosixPath(here.relative_to(root).as_posix())
        inherited = dir_why.get(rel_dir, "")
        ignored.read(here, rel_dir)
        for name in sorted(dirnames):
            path, rel = here / name, rel_dir / name
            label = never_ours(name, path, top=rel_dir.parts == ())
            unwanted = path.resolve() in skipped or (name in VCS_DIRS and not vcs)
            if path.is_symlink() or label is not None or unwanted:
                dirnames.remove(name)
                if path.is_symlink():
                    found.symlinks.append(rel)
                elif label is not None:
                    found.left_out.add(label)
                continue
            why = inherited or (".gitignore" if ignored(rel, True) else not_shipped(rel, True))
            dir_why[rel] = why
        for name in sorted(filenames):
            path, rel = here / name, rel_dir / name
            if name.endswith(BYTECODE):
                found.left_out.add(f"*{Path(name).suffix}")
            elif path.is_symlink():
                found.symlinks.append(rel)
            else:
                why = inherited or (".gitignore" if ignored(rel, False) else not_shipped(rel, False))
                found.files[rel] = why
    return found
