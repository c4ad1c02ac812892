"""The service's own wheel: built by its backend from a clean copy, or written for a flat project.

A packaged project (pyproject.toml or setup.py) is built as it is; a flat one (app.py +
requirements.txt, adopted with `integrator init`) gets the wheel of exactly the files the
project model ships (flatwheel.py), and its requirements.txt, without index options, is what
the download step resolves.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
import zipfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import BundleError, EnvironmentProblem, SpecError
from ..project.files import never_ours
from ..project.metadata import INDEX_OPTIONS, PYPROJECT, project_metadata, read_pyproject, requirement_option
from ..project.model import FLAT, Project, same_version
from ..spec import SPEC_FILE, ServiceSpec
from . import resolvecache
from .flatwheel import write_flat_wheel
from .lockfile import canonical_name
from .locks import wheel_metadata
from .venv import pip_error
from .wheels import run_pip

Progress = Callable[[str], None]


def _copy_ignore(root: Path, exclude: Path | None) -> Callable[[str, list[str]], set[str]]:
    """What the backend's clean copy leaves out: what is never the project's (project/files.py)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skip = {n for n in names if n.endswith((".pyc", ".pyo"))}
        skip |= {n for n in names if (here / n).is_dir() and never_ours(n, here / n, here == root)}
        if exclude is not None:
            skip |= {n for n in names if (here / n).resolve() == exclude}
        return skip

    return ignore


_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}


def sanitize_requirements(path: Path, out: Path) -> list[str]:
    """Copy requirements.txt to `out` without index options; return a note for each dropped.

    Where wheels come from is the build machine's pip configuration (a mirror, a proxy), not
    a line in an app's file (`integrator init` says the same). Nested -r/-c files are made
    absolute so the copy still finds them.
    """
    kept, notes = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        option = requirement_option(line)
        if option in INDEX_OPTIONS:
            notes.append(
                f"{path.name}:{number}: {option} ignored: pip's configuration decides where wheels come from"
            )
            continue
        if option in _INCLUDE_OPTIONS:
            line = f"{option} {(path.parent / line[len(option) :].strip(' =')).resolve()}"
        kept.append(line)
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return notes


def _check_pip() -> None:
    if importlib.util.find_spec("pip") is None:
        raise EnvironmentProblem(f"{sys.executable} has no pip: install pip into integrator's environment")


def build_app_wheel(
    project: Project, spec: ServiceSpec, work: Path, epoch: int, exclude: Path | None
) -> Path:
    """The app wheel: written from the model for a flat project; `pip wheel --no-deps` of a clean
    copy for a packaged one, so the build leaves nothing in the user's tree."""
    if project.packaging == FLAT:
        wheel = write_flat_wheel(project, spec, work / "app", epoch)
        check_entry(wheel, spec)
        return wheel
    _check_pip()
    copy = work / "source"
    shutil.copytree(project.root, copy, ignore=_copy_ignore(project.root.resolve(), exclude))
    out = work / "app"
    key = resolvecache.app_wheel_key(copy, epoch, version("pip"))
    if resolvecache.cached_app_wheel(key, out) is None:  # built from this very tree within the hour
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
        argv = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
        ]
        proc = run_pip([*argv, "--wheel-dir", str(out), str(copy)], cwd=work, env=env)
        if proc.returncode != 0:
            why = pip_error(proc.stdout + proc.stderr)
            raise BundleError(f"building the wheel of {project.root} failed: {why}")
        for built in out.glob("*.whl"):
            resolvecache.store_app_wheel(key, built)
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"building the wheel of {project.root} gave {len(wheels)} wheels, expected one")
    check_version(wheels[0], spec, project.root)
    check_entry(wheels[0], spec)
    return wheels[0]


def wheel_files(wheel: Path) -> list[PurePosixPath]:
    """The app's files in a wheel, as installed below site-packages (not its .dist-info)."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    return sorted(PurePosixPath(n) for n in names if not n.split("/")[0].endswith((".dist-info", ".data")))


def left_out_by_backend(project: Project, wheel: Path) -> list[PurePosixPath]:
    """Files the model ships that a packaged project's wheel lacks (its package data, usually)."""
    have = set(wheel_files(wheel))
    return [rel for rel in project.shipped if rel not in have]


def check_entry(wheel: Path, spec: ServiceSpec) -> None:
    """The entry's module is in the app wheel and binds its name: a typo stops here, not on the host.

    Read with `ast`, never imported: a name bound anywhere in the module counts, and a module
    with a star import or a module-level `__getattr__` is given the benefit of the doubt.
    """
    module, attr = spec.wsgi_module, spec.wsgi_callable
    path = module.replace(".", "/")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        member = next((m for m in (f"{path}.py", f"{path}/__init__.py") if m in names), None)
        if member is None:
            tops = {n.split("/")[0].removesuffix(".py") for n in names}
            shown = ", ".join(sorted(t for t in tops if not t.endswith((".dist-info", ".data"))))
            raise SpecError(
                f"[service] entry {spec.entry!r}: the app wheel has no module {module} "
                f"(it has: {shown or 'none'}); check service.toml"
            )
        source = zf.read(member).decode("utf-8", errors="replace")
    try:
        tree = ast.parse(source, filename=member)
    except SyntaxError as exc:
        raise SpecError(
            f"[service] entry {spec.entry!r}: {member} of the app wheel does not parse (line {exc.lineno})"
        ) from None
    bound = _bound_names(tree)
    if attr in bound or "*" in bound or "__getattr__" in bound:
        return
    top = sorted(_top_level_names(tree))
    raise SpecError(
        f"[service] entry {spec.entry!r}: module {module} of the app wheel binds no {attr} "
        f"(it has {', '.join(top) or 'no functions or assignments'}); check service.toml"
    )


def _top_level_names(tree: ast.Module) -> set[str]:
    """What the module defines or assigns at top level (not what it imports), for the message."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the module binds anywhere (over-generous on purpose: only a typo is refused)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound


def check_version(wheel: Path, spec: ServiceSpec, project: Path) -> None:
    """The version has one source: the project's own metadata, when it has any.

    service.toml repeats it (the bundle's name, `status` and the manifest use it); a
    project whose wheel says otherwise would answer with one version and be deployed as another.
    """
    built = str(wheel_metadata(wheel)["Version"] or "")
    if same_version(built, spec.version):
        return
    table, where = project_metadata(read_pyproject(project), project)
    source = f"{PYPROJECT} {where} version" if "version" in table else "the version its build computes"
    raise SpecError(
        f"version differs: {SPEC_FILE} [service] version is {spec.version!r}, the project's is {built!r} "
        f"({source}); set {SPEC_FILE}'s version to {built}: the project's metadata is the one source"
    )


def app_requires_python(wheel: Path) -> str | None:
    """The app wheel's Requires-Python (PEP 621 requires-python, Poetry's python, or None)."""
    value = wheel_metadata(wheel)["Requires-Python"]
    if value is None:
        return None
    return str(value).strip() or None


def prepare_requirements(project: Project, work: Path, progress: Progress) -> Path | None:
    """A flat project's requirements.txt, cleaned into `work`; None for a packaged project."""
    if project.requirements is None:
        return None
    clean = work / "requirements.txt"
    for note in sanitize_requirements(project.root / project.requirements, clean):
        progress(note)
    return clean


def check_extras(project: Project, app: Path | None, extras: Sequence[str]) -> None:
    """`[package] extras` name optional-dependency groups of a packaged project's wheel (`app`,
    once built): a flat project lists everything in its requirements file."""
    if not extras:
        return
    if project.packaging == FLAT:
        raise SpecError(
            f"[package] extras: {project.root} is a flat project (no {PYPROJECT} build): "
            "list those requirements in its requirements.txt, and remove extras"
        )
    if app is None:
        return
    provided = {canonical_name(str(e)) for e in wheel_metadata(app).get_all("Provides-Extra") or []}
    unknown = [e for e in extras if canonical_name(e) not in provided]
    if unknown:
        raise SpecError(
            f"[package] extras: {app.name} has no extra {unknown[0]!r} "
            f"(it provides: {', '.join(sorted(provided)) or 'none'}); check the spelling"
        )
