"""The docs name real code: every `module.function` and every source path they mention exists.

Docs that name a function which was renamed or never written send a reader to grep for nothing; this
keeps README.md and docs/ honest as the code moves.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

import integrator

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
TICKED = re.compile(r"`([^`\s]+)`")
# `module.attr` (or `pkg.module.attr`), attr an identifier; a file name such as `nginx.conf` is not one
DOTTED = re.compile(r"(?:[a-z_][a-z0-9_]*\.)+[A-Za-z_][A-Za-z0-9_]*")
FILE_ENDINGS = {
    "lua",  # wrk scripts (bench/drain.lua), not host/drain.py functions
    "conf",
    "py",
    "json",
    "toml",
    "txt",
    "pem",
    "sig",
    "pyz",
    "socket",
    "service",
    "lock",
    "cfg",
    "md",
}
SOURCE_PATH = re.compile(r"(?:[a-z_]+/)+[a-z_0-9]+\.(?:py|sh)")


def _modules() -> dict[str, list[str]]:
    """Short names (`deploy`, `host.deploy`, `integrator.host.deploy`) -> full module names."""
    found: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(integrator.__path__, "integrator."):
        if ".template.files" in info.name:
            continue
        parts = info.name.split(".")
        for i in range(1, len(parts)):
            found.setdefault(".".join(parts[i:]), []).append(info.name)
        found.setdefault(info.name, []).append(info.name)
    return found


def _mentions(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for token in TICKED.findall(doc.read_text()):
            token = token.rstrip("()")
            if pattern.fullmatch(token):
                out.append((doc.name, token))
    return sorted(set(out))


MODULES = _modules()


def _named_functions() -> list[tuple[str, str]]:
    named = []
    for doc, token in _mentions(DOTTED):
        module, attr = token.rsplit(".", 1)
        owner, _, cls = module.rpartition(".")
        known = module in MODULES or (owner in MODULES and cls[:1].isupper())  # or `module.Class.method`
        if known and attr not in FILE_ENDINGS:
            named.append((doc, token))
    return named


def test_the_docs_name_functions_at_all() -> None:
    """Guards the scan itself: a regex that matched nothing would pass every check below."""
    assert len(_named_functions()) >= 10
    assert len(_mentions(SOURCE_PATH)) >= 10


@pytest.mark.parametrize(("doc", "token"), _named_functions())
def test_every_module_function_named_in_the_docs_exists(doc: str, token: str) -> None:
    module, attr = token.rsplit(".", 1)
    owners = [m for m in MODULES[module] if hasattr(importlib.import_module(m), attr)]
    if not owners and "." in module:  # `module.Class.method`
        module, cls = module.rsplit(".", 1)
        owners = [
            m
            for m in MODULES.get(module, [])
            if hasattr(getattr(importlib.import_module(m), cls, None), attr)
        ]
    assert owners, f"{doc} names {token}, but {' / '.join(MODULES[module])} has no {attr}"


@pytest.mark.parametrize(("doc", "path"), _mentions(SOURCE_PATH))
def test_every_source_path_named_in_the_docs_exists(doc: str, path: str) -> None:
    bases = [ROOT, ROOT / "src" / "integrator", ROOT / "src"]
    spec = importlib.util.find_spec(path.split("/", 1)[0])
    if spec is not None and spec.origin is not None and path.split("/", 1)[0] != "integrator":
        bases.append(Path(spec.origin).parent.parent)  # another package's file, e.g. gunicorn/workers/...
    template = ROOT / "src" / "integrator" / "template" / "files"
    if path.startswith("src/NAME/"):
        assert (template / "src" / "__name__" / path.removeprefix("src/NAME/")).exists()
        return
    assert any((base / path).exists() for base in bases), f"{doc} names {path}, which does not exist"


TEST_REF = re.compile(r"(tests/[a-z_0-9]+\.py)::([a-z_0-9]+)")


def _test_refs() -> list[tuple[str, str, str]]:
    refs = []
    for doc in DOCS:
        for token in TICKED.findall(doc.read_text()):
            match = TEST_REF.fullmatch(token)
            if match:
                refs.append((doc.name, match.group(1), match.group(2)))
    return sorted(set(refs))


@pytest.mark.parametrize(("doc", "path", "name"), _test_refs())
def test_every_test_named_in_the_docs_exists(doc: str, path: str, name: str) -> None:
    source = (ROOT / path).read_text()
    assert re.search(rf"^def {name}\(", source, re.M), f"{doc} names {path}::{name}, which does not exist"
