"""One lock per target: `name==version --hash=sha256:...` for every wheel it installs.

The grammar a lock must keep (and the host enforces) is lockfile.parse_lock's.

`check_closure` proves a lock complete for its target, independently of how pip resolved:
the host installs with `--no-deps`, trusting the lock to hold every dependency.
"""

from __future__ import annotations

import email.message
import email.parser
import importlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _vendored(module: str) -> Any:
    """pip's own copy of `packaging`: pip is already required, `packaging` itself is not."""
    return importlib.import_module(f"pip._vendor.packaging.{module}")


def wheel_metadata(wheel: Path) -> email.message.Message:
    """The wheel's .dist-info/METADATA: Version, Requires-Python, Requires-Dist."""
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise BundleError(f"{wheel.name}: no unique .dist-info/METADATA")
        return email.parser.Parser().parsestr(zf.read(names[0]).decode("utf-8", errors="replace"))


def _requires_dist(wheel: Path) -> list[str]:
    return wheel_metadata(wheel).get_all("Requires-Dist") or []


def check_closure(target: TargetSpec, pins: Sequence[Pin], wheel_dir: Path) -> None:
    """Every dependency each locked wheel declares for `target` is locked at a fitting version.

    `--no-deps` on the host trusts the lock to be complete; this proves it, independently
    of how pip resolved (extras are not followed: they are never needed for a missing one).
    """
    requirement_cls = _vendored("requirements").Requirement
    pinned = {pin.name: pin.version for pin in pins}
    environment = {**target.marker_env(), "extra": ""}
    for pin in pins:
        for line in _requires_dist(wheel_dir / pin.filename):
            req = requirement_cls(line)
            if req.marker is not None and not req.marker.evaluate(environment):
                continue
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
