"""`integrator new`, `clone` and `init` (init.py): where a service's source comes from.

Each command checks everything it can in memory first (the name, the spec, the destination),
then writes in one atomic step and returns a Result; nothing here prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from ..errors import TemplateError
from ..result import Result
from ..spec import SPEC_FILE, ServiceSpec, load_spec, parse_spec
from .rename import VERBATIM_DIRS, Renamer, read_tree, rename_tree
from .tree import (
    check_destination,
    host_names,
    new_spec,
    parse_service_toml,
    render_tree,
    service_toml,
    title_of,
    write_tree,
)


def _next_steps(dest: Path, spec: ServiceSpec) -> list[str]:
    bundle = f"dist/{spec.name}-{spec.version}.pyz"
    return [
        "next:",
        f"  cd {shlex.quote(str(dest))} && python -m pytest   # needs flask, pytest: pip install -e '.[dev]'",
        f"  integrator bundle                    # -> {bundle}",
        f"  integrator deploy {bundle} --ssh root@HOST   # or --host SANDBOX",
    ]


# --- new -------------------------------------------------------------------------------


def new(name: str, directory: Path | None = None) -> Result:
    """Render the Flask template for `name` in memory, then write it as a new directory."""
    files = render_tree(name)  # a bad name fails here: nothing has been written
    spec = new_spec(name)
    dest = directory if directory is not None else Path(name)
    write_tree(files, dest)
    result = Result(
        data={
            "name": spec.name,
            "path": str(dest),
            "entry": spec.entry,
            "version": spec.version,
            "files": [str(p) for p in files],
        }
    )
    result.say(
        f"created {dest}/ ({len(files)} files): service {spec.name} {spec.version}, entry {spec.entry}"
    )
    result.say(f"  on a host: {host_names(spec)}")
    for line in _next_steps(dest, spec):
        result.say(line)
    return result


# --- clone -----------------------------------------------------------------------------


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def _check_clone_inputs(src: Path, newname: str, dest: Path) -> ServiceSpec:
    """Everything about `clone` that can be refused before any file is read."""
    if not (src / SPEC_FILE).is_file():
        raise TemplateError(
            f"{src} has no {SPEC_FILE}: clone copies an integrator service "
            "(for a project integrator did not make, run `integrator init` in it first)"
        )
    old = load_spec(src)
    parse_spec({"service": {"name": newname, "version": old.version, "entry": old.entry}}, source="clone")
    if newname == old.name:
        raise TemplateError(f"{src} is already called {newname!r}; choose a new name")
    check_destination(dest)
    if _inside(dest, src):
        raise TemplateError(
            f"{dest} is inside {src}; put the clone beside it, e.g. {src.resolve().parent / newname}"
        )
    return old


def clone(src: Path, newname: str, directory: Path | None = None) -> Result:
    """Copy service `src` as `newname`: package dir, imports, spec, tests, docs and env prefix renamed.

    The old name is read from src's service.toml, not from the directory name, which may differ.
    """
    dest = directory if directory is not None else Path(newname)
    old = _check_clone_inputs(src, newname, dest)
    tree = read_tree(src)
    renamed = rename_tree(tree, Renamer(old.name, newname))
    spec_path = PurePosixPath(SPEC_FILE)
    spec = parse_service_toml(renamed.files[spec_path].decode("utf-8"), source=f"{dest}/{SPEC_FILE}")
    if spec.name != newname:  # e.g. the name was written in a form the renamer does not see
        spec = replace(spec, service=replace(spec.service, name=newname))
        renamed.files[spec_path] = service_toml(spec).encode("utf-8")
    write_tree(renamed.files, dest, renamed.modes)

    result = Result(
        data={
            "name": spec.name,
            "from": old.name,
            "path": str(dest),
            "entry": spec.entry,
            "files": len(renamed.files),
            "changed": [str(p) for p in renamed.changed],
            "replacements": renamed.replacements,
            "skipped": tree.skipped,
            "left_out": sorted(tree.left_out),
        }
    )
    result.say(f"cloned {old.name} ({src}) as {spec.name} in {dest}/: {len(renamed.files)} files")
    result.say(
        f"  renamed {old.name}/{title_of(old.name)}/{old.name.upper()}: {renamed.replacements} places in "
        f"{len(renamed.changed)} files"
    )
    result.say(f"  entry {spec.entry}; on a host: {host_names(spec)}")
    if tree.left_out:
        result.say(f"  left out (rebuilt from the sources): {', '.join(sorted(tree.left_out))}")
    _clone_warnings(result, old, spec, tree.skipped, renamed.files)
    for line in _next_steps(dest, spec):
        result.say(line)
    return result


def _clone_warnings(
    result: Result, old: ServiceSpec, spec: ServiceSpec, skipped: list[str], files: dict[PurePosixPath, bytes]
) -> None:
    for item in skipped:
        result.warn(f"not copied: {item}")
    if old.http.server_names and set(spec.http.server_names) & set(old.http.server_names):
        shared = ", ".join(sorted(set(spec.http.server_names) & set(old.http.server_names)))
        result.warn(
            f"[http] server_names still include {shared}: two services on one host cannot share a host name"
        )
    top = spec.wsgi_module.split(".")[0]
    if not _defines_module(files, top):
        result.warn(f"entry module {top!r} not found in the copy; check [service] entry")
    if any(p.parts[0] in VERBATIM_DIRS for p in files):
        result.warn(
            "copied .git unchanged: the rename shows as uncommitted changes (remove .git for a fresh history)"
        )


def _defines_module(files: Iterable[PurePosixPath], top: str) -> bool:
    """Whether `top` is importable from the tree: `top.py` or `top/` at its root or under src/."""
    for path in files:
        parts = path.parts[1:] if path.parts[:1] == ("src",) else path.parts
        if (len(parts) > 1 and parts[0] == top) or parts[:1] == (f"{top}.py",):
            return True
    return False


from .init import init  # noqa: E402  (the third command, kept in its own module)

__all__ = ["clone", "init", "new"]
