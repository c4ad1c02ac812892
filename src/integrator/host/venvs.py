"""Release venvs shared by lock: built once per (wheels, interpreter), reused, removed when unused.

A venv cannot move (its scripts' `#!` lines name its path), so each is built where it stays,
`/opt/NAME/venvs/<key>`, and a release's `venv` is a relative symlink to it; the unit, its
PATH and `status` go through the symlink. The key is a digest of the interpreter (path, X.Y,
machine), the installer's format and the sha256 of every wheel installed: a release with
the same lock on the same Python reuses the venv instead of building it again. A venv is
complete once its marker (written last) exists: one a killed deploy left half-built is never
reused, and one that is no longer usable (the host's Python changed) is replaced by a new one
beside it while a release still uses it. Cleanup removes every venv no release links to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..layout import Layout
from .bundleio import BundleInfo
from .facts import HostFacts, venv_usable
from .fs import remove_tree
from .releases import release_ids
from .system import System

MARKER = "integrator-venv.json"  # written last: the venv is complete
FORMAT = "integrator-venv-1"  # part of the key: change it when what the installer writes changes


@dataclass(frozen=True)
class VenvDir:
    """A directory below `venvs/` as found on the host."""

    name: str
    complete: bool  # its marker exists
    usable: bool  # fits the host's Python (facts.venv_usable)


@dataclass(frozen=True)
class VenvChoice:
    """Reuse one venv, or build `build` after removing the unreferenced leftovers `remove`."""

    reuse: str | None
    build: str | None
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class VenvOutcome:
    name: str
    reused: bool
    seconds: float

    def line(self) -> str:
        if self.reused:
            return f"venv: reused {self.name} (same wheels, same Python)"
        return f"venv: built {self.name} in {self.seconds:.1f} s"


def venv_key(python: str, python_short: str, machine: str, wheel_sha256s: Iterable[str]) -> str:
    """What makes two venvs interchangeable, as a directory name (`py3.11-<16 hex>`)."""
    doc = {"format": FORMAT, "python": python, "version": python_short, "machine": machine,
           "wheels": sorted(wheel_sha256s)}  # fmt: skip
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return f"py{python_short}-{digest[:16]}"


def choose_venv(key: str, found: Sequence[VenvDir], referenced: set[str]) -> VenvChoice:
    """Reuse the first complete, usable venv of `key` (`key`, `key.2`, ...); else build a new one
    under the first name no release links to, removing the unreferenced incomplete or unusable
    ones of that key first. A venv a release links to is never removed or rebuilt in place."""

    def number(venv: VenvDir) -> int:  # key -> 1, key.2 -> 2, ...
        suffix = venv.name[len(key) + 1 :]
        return 1 if venv.name == key else int(suffix) if suffix.isdigit() else 1 << 30

    mine = sorted((d for d in found if d.name == key or d.name.startswith(key + ".")), key=number)
    for venv in mine:
        if venv.complete and venv.usable:
            return VenvChoice(reuse=venv.name, build=None)
    name, n = key, 1
    while name in referenced:
        n += 1
        name = f"{key}.{n}"
    return VenvChoice(None, name, tuple(d.name for d in mine if d.name not in referenced))


def unused(found: Iterable[str], referenced: set[str]) -> list[str]:
    """The venvs no release links to (cleanup removes them)."""
    return sorted(name for name in found if name not in referenced)


# --- facts and actions ------------------------------------------------------------------------


def referenced(system: System, layout: Layout) -> set[str]:
    """Names of the venvs that release symlinks point to (a release's own venv dir counts as none)."""
    names = set()
    for rid in release_ids(system, layout):
        link = system.path(layout.venv(rid))
        if link.is_symlink():
            target = PurePosixPath(os.readlink(link))
            if target.parent == PurePosixPath("../../venvs"):
                names.add(target.name)
    return names


def predates_sharing(system: System, layout: Layout, rid: str) -> str | None:
    """A release deployed before venvs were shared has its own venv dir, which its re-rendered
    unit may not execute from (ExecPaths= names `venvs/`): a rollback to it links it to one."""
    real = system.path(layout.venv(rid))
    if real.is_dir() and not real.is_symlink():
        return f"{layout.venv(rid)} is the release's own venv (from before venvs were shared)"
    return None


def found_venvs(system: System, layout: Layout, facts: HostFacts) -> list[VenvDir]:
    root = system.path(layout.venvs)
    if not root.is_dir():
        return []
    return [
        VenvDir(
            entry.name,
            (entry / MARKER).is_file(),
            venv_usable(system, layout.shared_venv(entry.name), facts) is None,
        )
        for entry in sorted(root.iterdir())
        if entry.is_dir() and not entry.is_symlink()
    ]


def ensure_venv(system: System, info: BundleInfo, layout: Layout, rid: str, facts: HostFacts) -> VenvOutcome:
    """Link releases/<rid>/venv to the venv of its lock and the host's Python, building it if needed.

    The one entry point for a release's venv (deploy, and rollback after the host's Python
    changed). The lock is checked against the wheelhouse (pins only, sha256) before anything.
    """
    from ..bundle import venv as bv
    from ..bundle.manifest import WHEELHOUSE

    started = time.monotonic()
    release = system.path(layout.release(rid))
    lock = release / bv.pick_target(info.manifest, facts.python_short, facts.machine, bv.host_glibc())
    wheels = bv.locked_wheel_digests(release / WHEELHOUSE, lock)
    key = venv_key(facts.python, facts.python_short, facts.machine, wheels.values())
    link = system.path(layout.venv(rid))
    remove_tree(system, layout.venv(rid))  # a stale link, or a release's own venv from before
    root = system.path(layout.venvs)
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    choice = choose_venv(key, found_venvs(system, layout, facts), referenced(system, layout))
    for name in choice.remove:
        remove_tree(system, layout.shared_venv(name))
    name = choice.reuse or choice.build or key
    if choice.build is not None:
        _build(root / name, release / WHEELHOUSE, lock, facts, key)
    os.symlink(f"../../venvs/{name}", link)
    return VenvOutcome(name, choice.reuse is not None, time.monotonic() - started)


def _build(target: Path, wheelhouse: Path, lock: Path, facts: HostFacts, key: str) -> None:
    from ..bundle import venv as bv

    try:
        wheels = bv.build_venv(target, wheelhouse, lock, python=facts.python)
        record = {"key": key, "python": facts.python, "python_version": facts.python_short,
                  "machine": facts.machine, "wheels": [w.name for w in wheels]}  # fmt: skip
        tmp = target / f".{MARKER}.tmp"
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        tmp.chmod(0o644)
        os.replace(tmp, target / MARKER)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def remove_unused(system: System, layout: Layout) -> list[str]:
    """Remove the venvs no release links to; their names."""
    root = system.path(layout.venvs)
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    doomed = unused(names, referenced(system, layout))
    for name in doomed:
        remove_tree(system, layout.shared_venv(name))
    return doomed
