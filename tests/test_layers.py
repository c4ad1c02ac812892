"""The import layers, read from the source with `ast` (nothing is imported, so it is fast).

- render/ is pure: it never imports host/, sandbox/, targets/ or subprocess.
- host-side code (`HOST_SIDE` in bundle/zipapp.py: what the bundle carries) imports nothing but
  the standard library and other host-side modules, lazily or not: it runs on a bare Python.
- the host tool (`HOST_TOOL`: the host-side code, run there by host/pyzmain.py `tool_main`) needs
  nothing else at import time.
- no import cycle between the packages: host -> bundle (its host-side readers), targets -> host,
  never back; and none between modules at import time.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from integrator.bundle.zipapp import HOST_SIDE, HOST_TOOL

PKG = Path(__file__).resolve().parent.parent / "src" / "integrator"


def module_name(path: Path) -> str:
    parts = ["integrator", *path.relative_to(PKG).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package (template/files/ holds templates, not modules)."""
    files = sorted(PKG.rglob("*.py"))
    return {module_name(p): p for p in files if "files" not in p.relative_to(PKG).parts[:2]}


def imports(path: Path, top_level_only: bool = False) -> Iterator[str]:
    """Every module `path` imports (absolute names), relative imports resolved; with
    `top_level_only`, only those run when the module is imported (not inside a function,
    not under `if TYPE_CHECKING`)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _top_level(tree.body) if top_level_only else ast.walk(tree)
    fallbacks = {id(n) for n in ast.walk(tree) if _is_fallback(n) for n in ast.walk(n)}
    for node in nodes:
        if id(node) in fallbacks:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:  # `from . import units` imports a module
                yield f"{base}.{alias.name}"


def _is_fallback(node: ast.AST) -> bool:
    """`except ModuleNotFoundError:` after a stdlib import (tomllib, else tomli on the build side)."""
    return (
        isinstance(node, ast.ExceptHandler)
        and isinstance(node.type, ast.Name)
        and (node.type.id in ("ModuleNotFoundError", "ImportError"))
    )


def _top_level(body: list[ast.stmt]) -> Iterator[ast.AST]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body)


def listed(entries: tuple[str, ...]) -> set[str]:
    """Module names for a list of paths relative to the package (directories taken whole)."""
    names = set()
    for entry in entries:
        path = PKG / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        names |= {module_name(f) for f in files}
    return names


def _own(imported: str, modules: dict[str, Path]) -> str | None:
    """The integrator module an import names, or None for a name of another distribution."""
    if imported != "integrator" and not imported.startswith("integrator."):
        return None
    while imported not in modules:  # `from .x import name`: the name is not a module
        imported = imported.rpartition(".")[0]
    return imported


def _stray(allowed: set[str], top_level_only: bool, which: set[str]) -> list[str]:
    modules = all_modules()
    stray = []
    for name in sorted(which):
        for imported in imports(modules[name], top_level_only):
            own = _own(imported, modules)
            if own is None and imported.split(".")[0] not in sys.stdlib_module_names:
                stray.append(f"{name} imports {imported} (not in the standard library)")
            elif own is not None and own not in allowed:
                stray.append(f"{name} imports {own} (not host-side)")
    return stray


def test_the_host_side_lists_name_real_files() -> None:
    for entry in HOST_TOOL:
        assert (PKG / entry).exists(), entry


def test_render_never_reaches_a_host_or_runs_a_program() -> None:
    modules = all_modules()
    forbidden = ("integrator.host", "integrator.sandbox", "integrator.targets", "subprocess")
    for name, path in modules.items():
        if name.startswith("integrator.render"):
            bad = [i for i in imports(path) if i.startswith(forbidden)]
            assert bad == [], f"{name} imports {bad}"


def test_host_side_code_imports_the_stdlib_and_host_side_code_only() -> None:
    host_side = listed(HOST_SIDE)
    assert _stray(host_side, top_level_only=False, which=host_side) == []


def test_host_tool_loads_with_the_stdlib_and_host_side_code_only() -> None:
    tool = listed(HOST_TOOL)
    assert _stray(tool, top_level_only=True, which=tool) == []


def _package(name: str) -> str:
    """`host` for integrator.host.deploy (and for integrator.host itself)."""
    return name.split(".")[1] if "." in name else name


def test_no_import_cycle_between_packages() -> None:
    modules = all_modules()
    edges: set[tuple[str, str]] = set()
    for name, path in modules.items():
        for imported in imports(path):
            own = _own(imported, modules)
            if own is not None and _package(own) != _package(name):
                edges.add((_package(name), _package(own)))
    packages = {"host", "bundle", "targets", "render", "sandbox", "template"}
    cycles = sorted((a, b) for a, b in edges if a < b and (b, a) in edges and {a, b} <= packages)
    assert cycles == []


def test_no_import_cycle_between_modules_at_import_time() -> None:
    """No module needs itself to load (issue 13: deploy_plan.py <-> deploy.py was one): the
    imports run when a module is imported, followed module to module, come back to none."""
    modules = all_modules()
    # a module's own packages are loading already when it is (`from . import codec`): not a cycle
    graph = {
        name: {
            own
            for i in imports(path, top_level_only=True)
            if (own := _own(i, modules)) is not None and own != name and not name.startswith(f"{own}.")
        }
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []

    def walk(name: str, path: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[name]):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                walk(nxt, [*path, nxt], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            walk(name, [name], done)
    assert cycles == []
