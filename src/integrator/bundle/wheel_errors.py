"""pip's refusals of one target, as one line and as what `collect_wheels` may drop (BUILD SIDE).

A default target (not asked for with --python) that a dependency's Requires-Python excludes
(`PythonMismatch`) or that a dependency has no fitting wheel for (`NoWheel`) is left out with a
note; one asked for stops the build with the line `download_error` makes.
"""

from __future__ import annotations

import re

from ..errors import BundleError
from .targets import MAX_GLIBC, TargetSpec
from .venv import pip_error

Needs = tuple[str, str, str]  # (package, version, its Requires-Python)


class NoWheel(BundleError):
    """A target some dependency has no wheel for: droppable when it was a default one."""


class PythonMismatch(BundleError):
    """A target that a dependency's Requires-Python excludes: droppable when it was a default one."""

    def __init__(self, message: str, needs: Needs) -> None:
        super().__init__(message)
        self.needs = needs


def download_error(output: str, target: TargetSpec, needs: Needs | None = None) -> str:
    """pip's many lines -> one that names the package and the target (and its Requires-Python)."""
    if needs is not None:
        name, version, requires = needs
        return (
            f"{name} {version} needs Requires-Python {requires}: target {target.tag} is CPython "
            f"{target.python}; drop the {target.python} target (--python) or pin a version of {name} "
            "that supports it"
        )
    match = re.search(r"No matching distribution found for (\S+)", output) or re.search(
        r"satisfies the requirement (\S+)", output
    )
    if match:
        return (
            f"no usable wheel of {match.group(1).rstrip(';,')} for {target.tag} (CPython {target.python}, "
            f"{target.machine}, glibc <= {MAX_GLIBC[0]}.{MAX_GLIBC[1]}, or pure Python): "
            "pin a version that has one, or drop that target"
        )
    return f"{target.tag}: pip download failed: {pip_error(output)}"
