"""What a write did, or would do, to one path: shared by the plan (pure) and the writer (fs.py).

Pure: no host is read here, so `release_plan.py` can describe changes without importing the
module that makes them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import PurePosixPath

CREATE, CHANGE, UNCHANGED, REMOVE = "create", "change", "unchanged", "remove"


@dataclass(frozen=True)
class Change:
    """What a write did (or would do) to one path; `diff` is empty for hidden content."""

    path: PurePosixPath
    action: str
    diff: str = ""

    @property
    def changed(self) -> bool:
        return self.action != UNCHANGED


def unified_diff(path: PurePosixPath, old: bytes | None, new: bytes) -> str:
    """`diff -u` of a text file (`/dev/null` when it is new); binary content is not shown."""
    try:
        old_lines = (old or b"").decode().splitlines(keepends=True)
        new_lines = new.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return "(binary content)"
    before = "/dev/null" if old is None else f"a{path}"
    return "".join(difflib.unified_diff(old_lines, new_lines, before, f"b{path}"))
