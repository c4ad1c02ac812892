"""What integrator created for a service, so that it only ever removes that.

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

import json
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Optional

from ..errors import HostError, UsageError
from ..layout import STATE_ROOT, Layout
from .facts import parse_properties
from .fs import FileWriter, remove_tree
from .system import Account, System

USER, GROUP = "user", "group"
Inode = tuple[int, int]  # (st_dev, st_ino)


def user_comment(name: str) -> str:
    """The GECOS comment of a user integrator creates (`users.ensure_user`)."""
    return f"integrator service {name}"


@dataclass(frozen=True)
class Owned:
    """The record: None as a value means reserved (to be created by the running deploy)."""

    service: str
    accounts: dict[str, Optional[int]] = field(default_factory=dict)  # USER/GROUP -> uid/gid
    dirs: dict[str, Optional[Inode]] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()  # files and /run/NAME: marked by path alone
    adopted: bool = False  # taken over from an install made before the record existed


@dataclass(frozen=True)
class Node:
    """`lstat` of a path: what a directory mark is compared with."""

    inode: Inode
    uid: int
    is_dir: bool  # a real directory, not a symlink to one


@dataclass(frozen=True)
class Live:
    """The host as it is now, for the names and paths of one service."""

    user: Optional[Account]
    group: Optional[Account]
    nodes: dict[str, Optional[Node]]  # every managed dir and path -> lstat, None if missing
    foreign_units: dict[str, str]  # unit -> the file systemd loads it from, when not ours


def managed_dirs(layout: Layout) -> list[PurePosixPath]:
    dirs = [layout.root, layout.app_state_dir, layout.etc_dir, layout.tls_cert.parent.parent]
    return list(dict.fromkeys(dirs))


def managed_paths(layout: Layout) -> list[PurePosixPath]:
    units = [layout.service_unit_path, layout.socket_unit_path, *layout.tls_watch_unit_paths]
    return [*units, layout.nginx_site, layout.runtime_dir]


# --- pure decisions ------------------------------------------------------------------------------


def owns_account(owned: Owned, kind: str, live: Account) -> bool:
    """The recorded id matches, or it was reserved and (for a user) carries our comment."""
    if kind not in owned.accounts:
        return False
    recorded = owned.accounts[kind]
    if recorded is None:
        return kind == GROUP or live.comment == user_comment(owned.service)
    return recorded == live.id


def is_reserved(owned: Owned, key: str) -> bool:
    """Reserved by a deploy and not claimed yet: created (if at all) by a deploy that has not
    finished, or was killed (an account kind or a directory path)."""
    return (key in owned.accounts and owned.accounts[key] is None) or (
        key in owned.dirs and owned.dirs[key] is None
    )


def owns_dir(owned: Owned, layout: Layout, live: Live, path: PurePosixPath) -> bool:
    node = live.nodes.get(str(path))
    if node is None or not node.is_dir or str(path) not in owned.dirs:
        return False
    recorded = owned.dirs[str(path)]
    if recorded is None or recorded == node.inode:
        return True
    # StateDirectory= re-creates /var/lib/NAME owned by the service's user when it was removed.
    uid = owned.accounts.get(USER)
    user_ours = live.user is not None and owns_account(owned, USER, live.user)
    return path == layout.app_state_dir and user_ours and node.uid == uid


def owns(owned: Owned, layout: Layout, live: Live, path: PurePosixPath) -> bool:
    """A managed directory or path that integrator created (and that is still that object)."""
    if path in managed_dirs(layout):
        return owns_dir(owned, layout, live, path)
    return live.nodes.get(str(path)) is not None and str(path) in owned.paths


def conflicts(layout: Layout, owned: Owned, live: Live) -> list[tuple[str, str]]:
    """What the name would take over from someone else: (the thing, what to do about it)."""
    rename = "choose another service name"
    found: list[tuple[str, str]] = []
    for kind, account in ((USER, live.user), (GROUP, live.group)):
        if account is not None and not owns_account(owned, kind, account):
            found.append((f"{kind} {account.name}", rename))
    for path in [*managed_dirs(layout), *managed_paths(layout)]:
        if live.nodes.get(str(path)) is not None and not owns(owned, layout, live, path):
            found.append((str(path), f"move it away or {rename}"))
    found += [(f"unit {unit} ({source})", rename) for unit, source in live.foreign_units.items()]
    return found


def refusal(conflicts: list[tuple[str, str]]) -> str:
    """One line: the first thing, what to do, and the others by name."""
    (thing, advice), others = conflicts[0], [c[0] for c in conflicts[1:]]
    also = f" (also: {', '.join(others)})" if others else ""
    return f"{thing} exists and was not created by integrator: {advice}{also}"


def reserved(layout: Layout, owned: Owned, live: Live) -> Owned:
    """`owned` plus an entry without ids for everything missing: the deploy may create it."""
    accounts = dict(owned.accounts)
    for kind, account in ((USER, live.user), (GROUP, live.group)):
        if account is None:
            accounts[kind] = None
    dirs = dict(owned.dirs)
    for path in managed_dirs(layout):
        if live.nodes.get(str(path)) is None:
            dirs[str(path)] = None
    paths = owned.paths | {str(p) for p in managed_paths(layout)}
    return replace(owned, accounts=accounts, dirs=dirs, paths=paths)


def claimed(layout: Layout, owned: Owned, live: Live) -> Owned:
    """Reserved entries that now exist (and are ours) get their ids; /var/lib/NAME re-created
    by systemd gets its new inode."""
    accounts = dict(owned.accounts)
    for kind, account in ((USER, live.user), (GROUP, live.group)):
        if account is not None and owns_account(owned, kind, account):
            accounts[kind] = account.id
    dirs = dict(owned.dirs)
    for path in managed_dirs(layout):
        node = live.nodes.get(str(path))
        if node is not None and owns_dir(owned, layout, live, path):
            dirs[str(path)] = node.inode
    return replace(owned, accounts=accounts, dirs=dirs)


def still_ours(layout: Layout, owned: Owned, live: Live) -> Owned:
    """Only the entries whose objects still exist and are ours (after something was removed)."""
    now = claimed(layout, owned, live)
    accounts = {
        kind: now.accounts[kind]
        for kind, account in ((USER, live.user), (GROUP, live.group))
        if kind in now.accounts and account is not None and owns_account(now, kind, account)
    }
    dirs = {str(p): now.dirs[str(p)] for p in managed_dirs(layout) if owns_dir(now, layout, live, p)}
    paths = frozenset(p for p in now.paths if live.nodes.get(p) is not None)
    return replace(now, accounts=accounts, dirs=dirs, paths=paths)


def adopt(layout: Layout, live: Live) -> Owned:
    """A service deployed before the record existed: its current layout, minus a user that is
    not integrator's (a reused system account stays someone else's), and minus `/var/lib/NAME`
    when that user owns it (it was the account's data before integrator came)."""
    accounts: dict[str, Optional[int]] = {}
    user, group = live.user, live.group
    if user is not None and user.comment == user_comment(layout.name):
        accounts[USER] = user.id
        if group is not None and group.id == user.gid:
            accounts[GROUP] = group.id
    dirs: dict[str, Optional[Inode]] = {}
    for path in managed_dirs(layout):
        node = live.nodes.get(str(path))
        foreign = path == layout.app_state_dir and user is not None and USER not in accounts
        if node is not None and node.is_dir and not foreign:
            dirs[str(path)] = node.inode
    paths = frozenset(str(p) for p in managed_paths(layout) if live.nodes.get(str(p)) is not None)
    return Owned(layout.name, accounts, dirs, paths, adopted=True)


def to_json(owned: Owned) -> str:
    payload = {
        "service": owned.service,
        "accounts": owned.accounts,
        "dirs": {p: list(i) if i else None for p, i in sorted(owned.dirs.items())},
        "paths": sorted(owned.paths),
        "adopted": owned.adopted,
    }
    return json.dumps(payload, indent=2) + "\n"


def from_json(text: str) -> Owned:
    raw: dict[str, Any] = json.loads(text)
    return Owned(
        service=str(raw["service"]),
        accounts={
            k: (None if v is None else int(v)) for k, v in raw["accounts"].items() if k in (USER, GROUP)
        },
        dirs={str(p): (None if i is None else (int(i[0]), int(i[1]))) for p, i in raw["dirs"].items()},
        paths=frozenset(str(p) for p in raw["paths"]),
        adopted=bool(raw.get("adopted", False)),
    )


# --- the host ------------------------------------------------------------------------------------


def probe(system: System, layout: Layout) -> Live:
    """Users, groups, lstat of every managed path, and units systemd loads from other files."""
    nodes = {str(p): _lstat(system, p) for p in [*managed_dirs(layout), *managed_paths(layout)]}
    ours = {layout.service_unit: layout.service_unit_path, layout.socket_unit: layout.socket_unit_path}
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
