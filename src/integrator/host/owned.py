"""The ownership record of one service and the decisions made with it, pure: what integrator
created (`Owned`), the host as probed (`Live`), and whether a user, group or path is ours.

Nothing here reads a host: `ownership.py` probes, loads and saves the record (and says when it
is trusted); the rules are described there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Optional

from ..layout import Layout
from .system import Account

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
    units = [*(p for slot in layout.all_slots for p in slot.unit_paths), *layout.tls_watch_unit_paths]
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
