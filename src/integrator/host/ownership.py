"""What integrator created for a service, so that it only ever removes that: the host side
(probe, load, save, reserve, claim); the record and its pure decisions are `owned.py`.

A service name is also a user, a group and a handful of paths (`/opt/NAME`, `/var/lib/NAME`,
`/etc/integrator/NAME`, `/run/NAME`, two units, an nginx site), and any of them may already
belong to someone else: `postgres`, an admin's `/opt/shop`, Debian's `/run/sshd`. The ownership
record (`layout.ownership_record`, JSON in the root-only `/var/lib/integrator/NAME/`) lists what
integrator created: the user and group with their uid and gid, directories with their device
and inode, files and `/run/NAME` by path (rewritten or recreated, so their inode changes).

- A deploy (and `deploy --plan`) refuses a name whose user, group or paths exist without a
  matching entry, before anything is written (`require_ours`).
- Under the deploy lock, before the first change, every missing thing is reserved (an entry
  without ids, `reserve`); once the deploy ends, what it created is claimed with its ids
  (`claim`). A deploy killed in between leaves reserved entries, so the next one goes on.
- Uninstall and a failed first deploy remove only entries that match the live object.

Trust: the record is believed only when it, its directory and `/var/lib/integrator` are owned
by us (root on a host), not group/world-writable and not symlinks, so a local user cannot forge
it. A user made by integrator carries the GECOS comment `integrator service NAME`; it is
checked for reserved entries and on adoption, but never proof alone (chfn can change it).

Upgrade: a service deployed before the record existed has `releases.json` but no record; its
layout is adopted as integrator's own (`adopt`): the paths that exist, and the user and group
only when the user carries integrator's comment and the group is its primary group.
"""

from __future__ import annotations

import os
import stat
from pathlib import PurePosixPath
from typing import Optional

from ..errors import HostError, UsageError
from ..layout import STATE_ROOT, Layout
from .facts import parse_properties
from .fs import FileWriter, remove_tree
from .owned import (
    GROUP,
    USER,
    Inode,
    Live,
    Node,
    Owned,
    adopt,
    claimed,
    conflicts,
    from_json,
    is_reserved,
    managed_dirs,
    managed_paths,
    owns,
    owns_account,
    owns_dir,
    refusal,
    reserved,
    still_ours,
    to_json,
    user_comment,
)
from .system import System

__all__ = [  # the record's names too: callers say `ownership.Owned`, `ownership.owns`
    "GROUP",
    "USER",
    "Inode",
    "Live",
    "Node",
    "Owned",
    "adopt",
    "claim",
    "claimed",
    "conflicts",
    "from_json",
    "is_reserved",
    "load",
    "managed_dirs",
    "managed_paths",
    "owns",
    "owns_account",
    "owns_dir",
    "probe",
    "refusal",
    "remove_reserved",
    "require_ours",
    "reserve",
    "reserved",
    "save",
    "save_still_ours",
    "still_ours",
    "to_json",
    "user_comment",
]


# --- the host ------------------------------------------------------------------------------------


def probe(system: System, layout: Layout) -> Live:
    """Users, groups, lstat of every managed path, and units systemd loads from other files."""
    nodes = {str(p): _lstat(system, p) for p in [*managed_dirs(layout), *managed_paths(layout)]}
    ours = {unit: slot.unit_dir / unit for slot in layout.all_slots for unit in slot.units}
    foreign = {}
    for unit, path in ours.items():
        source = _unit_source(system, unit)
        if source and source != str(path):
            foreign[unit] = source
    return Live(system.user(layout.user), system.group(layout.user), nodes, foreign)


def load(system: System, layout: Layout) -> Optional[Owned]:
    """The record; for an install older than the record, its adopted layout; else None."""
    if _lexists(system, layout.ownership_record):
        _require_root_only(system, (STATE_ROOT, layout.state_dir, layout.ownership_record))
        try:
            owned = from_json(system.path(layout.ownership_record).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise HostError(f"{layout.ownership_record}: unreadable ownership record ({exc})") from None
        if owned.service != layout.name:
            raise HostError(
                f"{layout.ownership_record} is the record of {owned.service!r}, not {layout.name!r}"
            )
        return owned
    if _lexists(system, layout.releases_record):
        _require_root_only(system, (STATE_ROOT, layout.state_dir, layout.releases_record))
        return adopt(layout, probe(system, layout))
    return None


def save(system: System, layout: Layout, owned: Owned) -> None:
    writer = FileWriter(system)
    writer.ensure_dir(layout.state_dir, 0o700)
    writer.put(layout.ownership_record, to_json(owned), 0o600)


def require_ours(system: System, layout: Layout) -> Owned:
    """Refuse (exit 2) a name whose user, group or paths belong to someone else; read-only."""
    owned = load(system, layout) or Owned(layout.name)
    found = conflicts(layout, owned, probe(system, layout))
    if found:
        raise UsageError(refusal(found))
    return owned


def reserve(system: System, layout: Layout) -> None:
    """Under the deploy lock, before the first change: check again, then reserve what is missing."""
    owned = require_ours(system, layout)
    save(system, layout, reserved(layout, owned, probe(system, layout)))


def claim(system: System, layout: Layout) -> None:
    """After a deploy: record the ids of what it created. No record (a failed first deploy
    removed it): nothing to do."""
    if not system.path(layout.ownership_record).is_file():
        return
    owned = load(system, layout)
    if owned is not None:
        save(system, layout, claimed(layout, owned, probe(system, layout)))


def remove_reserved(system: System, layout: Layout, owned: Owned) -> list[str]:
    """After a failed first deploy: remove the directories and paths it created (entries it
    reserved that now exist); directories recorded earlier (kept app data, secrets) stay."""
    live = probe(system, layout)
    removed = []
    for path in [layout.root, layout.app_state_dir, layout.etc_dir, layout.runtime_dir]:
        recorded_before = str(path) in owned.dirs and not is_reserved(owned, str(path))
        if not recorded_before and owns(owned, layout, live, path) and remove_tree(system, path):
            removed.append(str(path))
    return removed


def save_still_ours(system: System, layout: Layout, owned: Owned) -> None:
    """After removing things: record what is left of ours (nothing left: no record)."""
    rest = still_ours(layout, owned, probe(system, layout))
    if rest.accounts or rest.dirs or rest.paths:
        save(system, layout, rest)
    elif system.path(layout.ownership_record).is_file():
        system.path(layout.ownership_record).unlink()


def _lexists(system: System, path: PurePosixPath) -> bool:
    """Whether `path` (or a symlink there) exists; root-only state read as another user is an error."""
    try:
        os.lstat(system.path(path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        raise HostError(f"{path}: permission denied (run as root)") from None
    return True


def _lstat(system: System, path: PurePosixPath) -> Optional[Node]:
    try:
        st = os.lstat(system.path(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Node((st.st_dev, st.st_ino), st.st_uid, stat.S_ISDIR(st.st_mode))


def _unit_source(system: System, unit: str) -> str:
    """The file systemd loads `unit` from ('' when it knows no such unit, or cannot be asked)."""
    argv = ["systemctl", "show", "-p", "LoadState,FragmentPath,SourcePath", unit]
    try:
        proc = system.run(argv, check=False)
    except HostError:
        return ""
    props = parse_properties(proc.stdout)
    if not proc.ok or props.get("LoadState", "not-found") in ("not-found", ""):
        return ""
    return props.get("FragmentPath") or props.get("SourcePath") or f"loaded as {props['LoadState']}"


def _require_root_only(system: System, paths: tuple[PurePosixPath, ...]) -> None:
    """Owned by us (root on a host), not group/world-writable, no symlink: else not believed."""
    for path in paths:
        st = os.lstat(system.path(path))
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or mode & 0o022:
            raise HostError(
                f"{path} is not root-only (owner uid {st.st_uid}, mode {mode:o}"
                f"{', a symlink' if stat.S_ISLNK(st.st_mode) else ''}): integrator does not trust it; "
                "find out who changed it before deploying or uninstalling"
            )
