"""What makes a release serve, decided pure: the slot it starts in, its files against the
host's, what is removed, and the slot drained after the switch (the activation kind).

`plan_activation` is the one place that chooses: a deploy (release_plan.plan_release), a
rollback and a repair (apply.activation_for) all take their `Activation` from it, and
activate.activate carries it out. Tables: tests/test_release_plan.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from .. import slots
from ..layout import Layout
from ..render import RenderedFile, render_all
from ..render.tls_watch import watched
from ..slots import SLOTS
from ..spec import ServiceSpec
from .changes import CHANGE, CREATE, REMOVE, unified_diff
from .nginxconf import unused_catch_alls_of

if TYPE_CHECKING:
    from .release_facts import FileFacts

DIR, FILE, LINK, SECRET, TLS = "dir", "file", "link", "secret", "tls"


@dataclass(frozen=True)
class FileChange:
    """One path a deploy creates, changes or removes (unchanged paths are not listed)."""

    path: PurePosixPath
    action: str  # create | change | remove
    kind: str  # dir | file (rendered) | link (the serving link) | secret | tls
    old_sha256: str | None = None  # None: missing before, a directory, or not read (a TLS key)
    new_sha256: str | None = None  # None: removed, a directory, or made on the host (TLS)
    diff: str = ""  # empty for secrets, keys and directories


START, DRAIN_FIRST = "start", "drain-first"  # Activation.kind


@dataclass(frozen=True)
class Activation:
    """What makes a release serve: its rendered files (all of them: the writer skips identical
    ones) for the slot it starts in, the catch-alls no integrator site uses any more, and the
    slot it then drains. Kind `start`: nothing serves, the slot just starts; `drain-first`:
    another slot (or the legacy pair) serves until nginx is switched, then is drained."""

    release_id: str
    files: tuple[RenderedFile, ...]
    remove: tuple[PurePosixPath, ...]
    changes: tuple[FileChange, ...]  # of `files`, `remove` and `retire_files`, as --plan lists them
    tls_watch: bool  # a provided certificate: its watch units are (re)started
    stop_tls_watch: bool  # no longer provided: the watch is stopped before its files go
    slot: str = SLOTS[0]  # where the release starts (slots.py)
    retire: str | None = None  # the slot serving now, drained and stopped after the switch
    retire_files: tuple[PurePosixPath, ...] = ()  # the legacy pair's unit files, removed then

    @property
    def kind(self) -> str:
        return START if self.retire is None else DRAIN_FIRST


def plan_activation(
    spec: ServiceSpec, layout: Layout, rid: str, nginx_version: tuple[int, int, int], found: FileFacts
) -> Activation:
    """Release `rid` into the slot that is not serving (the site found says which serves), its
    files against those found, the catch-alls left unused once its site is written (the other
    integrator sites keep theirs), the watch units of a certificate that is no longer provided;
    the serving slot is drained after the switch (a legacy pair's unit files removed then)."""
    serving = serving_slot(layout, found)
    into = slots.next_slot(serving, layout.slots)
    files = tuple(render_all(spec, layout, rid, nginx_version=nginx_version, slot=into.name))
    changes = list(rendered_changes(spec, layout, rid, nginx_version, found, into.name, files))
    if found.link_target != str(into.socket_path):  # the switch (a dead run may have made it already)
        action = CREATE if found.link_target is None else CHANGE
        changes.append(FileChange(layout.upstream_link, action, LINK, diff=f"-> {into.socket_path}\n"))
    sites = dict(found.nginx_sites)
    site = next(f for f in files if f.path == layout.nginx_site)
    sites[layout.nginx_site.name] = site.content
    watch = watched(spec)
    stale_watch = () if watch else tuple(p for p in layout.tls_watch_unit_paths if p in found.files)
    remove = (*unused_catch_alls_of(sites, found.catch_alls, layout), *stale_watch)
    legacy = layout.legacy
    retire_files = tuple(p for p in legacy.unit_paths if p in found.files) if serving == legacy else ()
    old = [found.files.get(p) for p in (*remove, *retire_files)]
    changes += [FileChange(p, REMOVE, FILE, s.sha256 if s else None)
                for p, s in zip((*remove, *retire_files), old)]  # fmt: skip
    retire = serving.name if serving is not None else None
    return Activation(
        rid, files, remove, tuple(changes), watch, bool(stale_watch), into.name, retire, retire_files
    )


def serving_slot(layout: Layout, found: FileFacts) -> slots.Slot | None:
    """The slot the site and the serving link found route to (slots.serving_slot)."""
    link = str(layout.upstream_link)
    return slots.serving_slot(site_text(layout, found), link, found.link_target, layout.all_slots)


def site_text(layout: Layout, found: FileFacts) -> str | None:
    state = found.files.get(layout.nginx_site)
    return state.content.decode(errors="replace") if state is not None and state.content is not None else None


def rendered_changes(
    spec: ServiceSpec,
    layout: Layout,
    rid: str,
    nginx_version: tuple[int, int, int],
    found: FileFacts,
    slot: str,
    files: tuple[RenderedFile, ...] | None = None,
) -> tuple[FileChange, ...]:
    """What writing release `rid`'s files for `slot` would change on the host found."""
    rendered = (
        files if files is not None else render_all(spec, layout, rid, nginx_version=nginx_version, slot=slot)
    )
    written = (file_change(f.path, f.content.encode(), f.mode, f.owner, f.group, found) for f in rendered)
    return tuple(c for c in written if c is not None)


def file_change(
    path: PurePosixPath,
    data: bytes,
    mode: int,
    owner: str,
    group: str,
    found: FileFacts,
    kind: str = FILE,
) -> FileChange | None:
    """What writing `data` at `path` would do (None: it is there already, with mode and owner)."""
    state = found.files.get(path)
    new = hashlib.sha256(data).hexdigest()
    if (
        state is not None
        and state.sha256 == new
        and (state.mode, state.uid, state.gid)
        == (
            mode,
            *found.ids.get((owner, group), (-1, -1)),
        )
    ):
        return None
    action = CREATE if state is None else CHANGE
    diff = "" if kind == SECRET else unified_diff(path, state.content if state else None, data)
    return FileChange(path, action, kind, state.sha256 if state else None, new, diff)
