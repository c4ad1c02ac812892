"""[static] (BUILD SIDE): the directories nginx serves, packed into the bundle as payload/static/DIR/.

A host unpacks them with the rest of the payload (manifest.extract_verified: root-owned files
0644 in directories 0755, no symlinks, nothing outside the release), so nginx reads them and the
app's user cannot change them. Here each directory is taken whole, regular files only: a symlink
is refused (it could point anywhere on the build machine), as is a name a host would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import SpecError
from .manifest import STATIC, check_member_name


def static_members(project: Path, static: Sequence[tuple[str, str]]) -> dict[str, Path]:
    """payload/static/DIR/REL -> the file, for every [static] directory of the project."""
    root = project.resolve()
    members: dict[str, Path] = {}
    for prefix, directory in static:
        where = f'[static] "{prefix}" = "{directory}"'
        base = project / directory
        if not base.exists() and not base.is_symlink():
            raise SpecError(
                f"{where}: {base} does not exist (a Django project fills it with `python manage.py "
                "collectstatic --noinput`, docs/adopt.md)"
            )
        if base.is_symlink() or not base.is_dir() or root not in base.resolve().parents:
            raise SpecError(f"{where}: {base} is not a directory of the project (symlinks are not followed)")
        found = 0
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            for name in sorted(dirnames + filenames):
                path = here / name
                rel = path.relative_to(project).as_posix()
                if path.is_symlink():
                    raise SpecError(f"{where}: {rel} is a symlink; [static] serves regular files only")
                if path.is_dir():
                    continue
                member = f"{STATIC}/{rel}"
                why = check_member_name(member)
                if why is not None or not path.is_file():
                    raise SpecError(f"{where}: {rel}: {why or 'not a regular file'}; rename or remove it")
                members[member] = path
                found += 1
        if not found:
            raise SpecError(
                f"{where}: {directory}/ holds no files (a Django project runs "
                "`python manage.py collectstatic --noinput` first)"
            )
    return members
