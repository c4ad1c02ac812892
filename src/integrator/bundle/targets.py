"""Build targets: a CPython minor version on a machine, and the wheels such a host accepts.

Every target admits manylinux wheels up to glibc 2.28, the oldest glibc of the hosts we aim
at (RHEL 8: 2.28, RHEL 9: 2.34, Debian 12: 2.36), and pure-Python wheels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import SpecError, UsageError

MACHINES = ("x86_64", "aarch64")
DEFAULT_PYTHONS = ("3.9", "3.11", "3.12")  # RHEL 9's python3, Debian 12's, and a newer one
# Newest glibc a wheel may need: RHEL 8 has 2.28, RHEL 9 2.34, Debian 12 2.36.
MAX_GLIBC = (2, 28)
_OLDEST_MANYLINUX = {"x86_64": 5, "aarch64": 17}
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PYTHON_RE = re.compile(r"^3\.([0-9]{1,2})\Z")


@dataclass(frozen=True)
class TargetSpec:
    """A CPython minor version on a machine, on any glibc >= the oldest the wheels need."""

    python: str  # "3.9"
    machine: str  # "x86_64"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def tag(self) -> str:
        return f"{self.abi}-{self.machine}"

    @property
    def newest_platform(self) -> str:
        return f"manylinux_{MAX_GLIBC[0]}_{MAX_GLIBC[1]}_{self.machine}"

    def platforms(self) -> list[str]:
        """Every manylinux tag a glibc <= MAX_GLIBC system accepts, newest (preferred) first."""
        minors = range(MAX_GLIBC[1], _OLDEST_MANYLINUX[self.machine] - 1, -1)
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in minors]
        legacy = [name for name, (_, minor) in LEGACY_MANYLINUX.items() if minor in minors]
        return tags + [f"{name}_{self.machine}" for name in sorted(legacy, reverse=True)]

    def marker_env(self) -> dict[str, str]:
        """PEP 508 marker values of a CPython of this version on Linux on this machine."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
        }


def parse_targets(pythons: Sequence[str], machines: Sequence[str]) -> list[TargetSpec]:
    """`--python 3.9,3.11 --platform x86_64` -> targets; anything unsupported is a usage error."""
    if not pythons or not machines:
        raise UsageError("give at least one --python and one --platform")
    for python in pythons:
        match = _PYTHON_RE.match(python)
        if not match or int(match.group(1)) < 9:
            raise UsageError(f"--python {python!r}: use 3.9 or newer, as MAJOR.MINOR (e.g. 3.11)")
    for machine in machines:
        if machine not in MACHINES:
            raise UsageError(f"--platform {machine!r}: use one of {', '.join(MACHINES)}")
    unique = {TargetSpec(p, m) for p in pythons for m in machines}
    return sorted(unique, key=lambda t: (machines.index(t.machine), int(t.python.split(".")[1])))


def wheel_glibc(filename: str) -> tuple[int, int] | None:
    """Oldest glibc a wheel runs on, from its platform tags; None for a pure-Python wheel."""
    versions = []
    for tag in filename[: -len(".whl")].split("-")[-1].split("."):
        match = re.match(r"^manylinux_(\d+)_(\d+)_", tag)
        if match:
            versions.append((int(match.group(1)), int(match.group(2))))
        elif tag.split("_")[0] in LEGACY_MANYLINUX:
            versions.append(LEGACY_MANYLINUX[tag.split("_")[0]])
    return min(versions) if versions else None


def admits(requires_python: str, python: str) -> bool:
    """Whether some CPython `python`.x satisfies `requires_python` (`>=3.10` admits 3.10, not 3.9)."""
    try:
        allowed = SpecifierSet(requires_python)
    except InvalidSpecifier:
        raise SpecError(
            f"Requires-Python {requires_python!r} of the app's wheel is not a version specifier"
        ) from None
    return any(allowed.contains(f"{python}.{patch}", prereleases=True) for patch in (0, 99))


def project_targets(
    targets: Sequence[TargetSpec], requires_python: str | None, *, given: bool
) -> tuple[list[TargetSpec], list[str]]:
    """The targets the project's Requires-Python admits, and a note for each default one it does not.

    A default target the project cannot run on is dropped with a note; one asked for with
    --python is an error, since the bundle would not be what was asked for.
    """
    if not requires_python:
        return list(targets), []
    kept = [t for t in targets if admits(requires_python, t.python)]
    dropped = sorted({t.python for t in targets if t not in kept}, key=lambda p: int(p.split(".")[1]))
    if given and dropped:
        raise UsageError(
            f"--python {','.join(dropped)}: the project requires Python {requires_python} "
            "(Requires-Python of its wheel); leave that version out"
        )
    if not kept:
        raise UsageError(
            f"the project requires Python {requires_python}: none of the targets "
            f"{', '.join(sorted({t.python for t in targets}))} fits; pass --python"
        )
    return kept, [f"no CPython {p} target: the project requires Python {requires_python}" for p in dropped]
