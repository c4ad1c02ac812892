"""One lock per target: `name==version --hash=sha256:...` for every wheel it installs.

The grammar a lock must keep (and the host enforces) is lockfile.parse_lock's.

`walk` follows each wheel's Requires-Dist with the *target's* environment markers: what the
target needs that pip left out (pip evaluates markers for the interpreter it runs on) and
what no root reaches there. `check_closure` proves a lock complete for its target,
independently of how pip resolved: the host installs exactly the lock, trusting it to hold
every dependency.
"""

from __future__ import annotations

import email.message
import email.parser
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import BundleError
from .lockfile import canonical_name
from .manifest import sha256_file
from .targets import TargetSpec, wheel_glibc


@dataclass(frozen=True, order=True)
class Pin:
    name: str  # canonical: lower case, runs of -_. as one -
    version: str
    filename: str
    sha256: str

    @property
    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def pin_of(wheel: Path) -> Pin:
    parts = wheel.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise BundleError(f"{wheel.name}: not a wheel file name")
    return Pin(canonical_name(parts[0]), parts[1], wheel.name, sha256_file(wheel))


def needed_glibc(pins: Sequence[Pin]) -> str | None:
    needs = [v for v in (wheel_glibc(p.filename) for p in pins) if v is not None]
    return ".".join(map(str, max(needs))) if needs else None


def lock_text(target: TargetSpec, pins: Sequence[Pin]) -> str:
    header = [
        f"# integrator lock for CPython {target.python} on {target.machine} (wheels in ../wheelhouse)",
        "# only pins: the host installs each as its wheel's path (no index, no sdist, no options)",
    ]
    return "\n".join(header + [pin.line for pin in sorted(pins)]) + "\n"


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's .dist-info/METADATA: Version, Requires-Python, Requires-Dist."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise BundleError(f"{wheel.name}: no unique .dist-info/METADATA")
        return email.parser.Parser().parsestr(zf.read(names[0]).decode("utf-8", errors="replace"))


def _requires_dist(wheel: Path) -> list[str]:
    return wheel_metadata(wheel).get_all("Requires-Dist") or []


def _target_requires(target: TargetSpec, wheel: Path) -> list[tuple[str, Requirement]]:
    """(line, requirement) of each Requires-Dist whose marker holds on `target` (no extras)."""
    environment = {**target.marker_env(), "extra": ""}
    found = []
    for line in _requires_dist(wheel):
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(environment):
            found.append((line.strip(), req))
    return found


def extra_requirements(target: TargetSpec, wheel: Path, extras: Sequence[str]) -> list[Requirement]:
    """The wheel's Requires-Dist that `extras` (`[package] extras`) add on `target`, markers dropped."""
    base = {line for line, _ in _target_requires(target, wheel)}
    found: dict[str, Requirement] = {}
    for extra in extras:
        environment = {**target.marker_env(), "extra": extra}
        for line in _requires_dist(wheel):
            req = Requirement(line)
            if line.strip() not in base and req.marker is not None and req.marker.evaluate(environment):
                req.marker = None
                found[str(req)] = req
    return list(found.values())


@dataclass(frozen=True)
class Walk:
    reached: frozenset[str]  # canonical names the roots need on the target
    missing: tuple[str, ...]  # requirements (markers dropped: they hold there) pip left out


def walk(target: TargetSpec, pins: Sequence[Pin], wheel_dir: Path, roots: Iterable[str]) -> Walk:
    """From `roots` (canonical names), follow Requires-Dist under the target's markers."""
    by_name = {pin.name: pin for pin in pins}
    reached: set[str] = set()
    missing: dict[str, None] = {}
    todo = [canonical_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in reached or name not in by_name:
            continue
        reached.add(name)
        for _, req in _target_requires(target, wheel_dir / by_name[name].filename):
            dep = canonical_name(req.name)
            have = by_name.get(dep)
            if have is None or not req.specifier.contains(have.version, prereleases=True):
                extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
                missing[f"{dep}{extras}{req.specifier}"] = None
            todo.append(dep)
    return Walk(frozenset(reached), tuple(missing))


def requirement_names(lines: Iterable[str]) -> set[str] | None:
    """Canonical names of a requirements file's requirement lines; None if one is not a plain one."""
    names = set()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            names.add(canonical_name(Requirement(line).name))
        except InvalidRequirement:
            return None  # a path or an option: prune nothing rather than guess
    return names


def check_closure(target: TargetSpec, pins: Sequence[Pin], wheel_dir: Path) -> None:
    """Every dependency each locked wheel declares for `target` is locked at a fitting version.

    The host installs exactly the lock, trusting it to be complete; this proves it,
    independently of how pip resolved (extras are not followed: they are never needed for a
    missing one).
    """
    pinned = {pin.name: pin.version for pin in pins}
    for pin in pins:
        for line, req in _target_requires(target, wheel_dir / pin.filename):
            have = pinned.get(canonical_name(req.name))
            if have is None or not req.specifier.contains(have, prereleases=True):
                found = "lacks it" if have is None else f"has {have}"
                raise BundleError(f"{target.tag}: {pin.filename} needs {line.strip()}, the lock {found}")


@dataclass(frozen=True)
class TargetLock:
    """A target and the exact wheels it installs."""

    target: TargetSpec
    pins: tuple[Pin, ...]

    @property
    def glibc(self) -> str | None:
        return needed_glibc(self.pins)

    @property
    def text(self) -> str:
        return lock_text(self.target, self.pins)
