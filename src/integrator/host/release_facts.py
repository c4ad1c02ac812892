"""The facts a deploy decides from, read once before anything changes: the probe of
facts → plan → apply. `release_plan.plan_release` takes these and reads nothing itself.

Which files are read follows from the renderers (`render_all` for the current release) and the
spec's secrets, never from a list kept here: a file a deploy writes is a file it probes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..layout import Layout
from . import releases, units
from .activate import HostContext, check_serving, render_for
from .facts import HostFacts, current_release, venv_python
from .fs import wanted_ids
from .nginxconf import integrator_sites
from .processes import found_unit_paths
from .releases import OK, ReleaseRecord
from .system import System
from .tls import TlsFacts, probe_tls

Ids = tuple[int, int]


@dataclass(frozen=True)
class FileState:
    """A file as found: its digest, mode and owner; `content` only for text a plan may diff."""

    sha256: str
    mode: int
    uid: int
    gid: int
    content: bytes | None = None  # None for secrets: never read into a plan


@dataclass(frozen=True)
class FileFacts:
    """What activating a release compares against: the files it writes and nginx's conf.d."""

    files: Mapping[PurePosixPath, FileState]  # every path a deploy may write; absent: missing
    dirs: frozenset[PurePosixPath]  # the directories a deploy may create that exist
    ids: Mapping[tuple[str, str], Ids]  # owner:group -> the ids a file written now gets
    nginx_sites: Mapping[str, str]  # conf.d sites using integrator's includes: name -> text
    catch_alls: tuple[str, ...]  # the catch-all files in conf.d
    link_target: str | None = None  # where the serving link points (None: no link)


@dataclass(frozen=True)
class ReleaseFacts:
    """Everything `plan_release` needs to know about the host and the service on it."""

    host: HostFacts
    now: float  # epoch seconds: release ids and certificate expiry
    current: str | None  # the release `current` points at
    records: tuple[ReleaseRecord, ...]
    release_names: frozenset[str]  # every entry in releases/ (a new id must be none of them)
    release_dirs: tuple[str, ...]  # the release directories, sorted (what cleanup considers)
    venv_python: tuple[int, ...] | None  # the current release's venv, from its pyvenv.cfg
    venv_runs: bool  # its bin/python is there and executable
    user_exists: bool
    tls: TlsFacts
    files: FileFacts
    serving: bool | None  # current is active and healthy; None: not asked (another bundle)


def probe_release(ctx: HostContext, bundle_sha256: str, secrets: Mapping[str, Path]) -> ReleaseFacts:
    """Read the facts. Whether the current release serves (a health check, up to 3 s) is asked
    only when it can decide anything: when `current` came from this very bundle."""
    system, layout = ctx.system, ctx.layout
    current = current_release(system, layout.current)
    records = tuple(releases.load_records(system, layout))
    record = releases.find(records, current)
    same = record is not None and record.bundle_sha256 == bundle_sha256 and record.outcome == OK
    serving = None
    if current is not None and same:
        slot = units.serving_slot(system, layout)
        serving = slot is not None and units.is_active(system, slot.service_unit)
        serving = serving and check_serving(ctx, deadline_s=3).ok
    real = system.path(layout.releases)
    return ReleaseFacts(
        host=ctx.facts,
        now=time.time(),
        current=current,
        records=records,
        release_names=frozenset(p.name for p in real.iterdir()) if real.is_dir() else frozenset(),
        release_dirs=tuple(releases.release_ids(system, layout)),
        venv_python=venv_python(system, layout.venv(current)) if current else None,
        venv_runs=current is not None
        and os.access(system.path(layout.venv(current) / "bin/python"), os.X_OK),
        user_exists=system.user(layout.user) is not None,
        tls=probe_tls(system, ctx.spec, layout),
        files=probe_files(ctx, current),
        serving=serving,
    )


def probe_files(ctx: HostContext, release_id: str | None) -> FileFacts:
    """The files the renderers write for `release_id` (the paths outside a release are the same
    for every release, and a new release's own directory does not exist yet: None), the
    secrets' files (digest only), the directories a deploy creates, and conf.d's integrator sites."""
    system, layout = ctx.system, ctx.layout
    rendered = render_for(ctx, release_id or "none")
    files: dict[PurePosixPath, FileState] = {}
    # the watch units, the units of processes and timers (removed when not rendered) and both
    # slots' units (the serving one and the other)
    slot_units = [p for slot in layout.all_slots for p in slot.unit_paths]
    stale = [*slot_units, *layout.tls_watch_unit_paths, *found_unit_paths(system, layout)]
    for path in dict.fromkeys([*(f.path for f in rendered), *stale]):
        state = _state(system, path, keep=True)
        if state is not None:
            files[path] = state
    for name in ctx.spec.secrets.files:
        state = _state(system, layout.credentials_dir / name, keep=False)
        if state is not None:
            files[layout.credentials_dir / name] = state
    owners = {(f.owner, f.group) for f in rendered} | {("root", "root")}
    sites, catch_alls = integrator_sites(system, layout)
    return FileFacts(
        files=files,
        dirs=frozenset(d for d, _ in (*tree_dirs(layout), *secret_dirs(layout)) if system.path(d).is_dir()),
        ids={owner: wanted_ids(*owner) for owner in owners},
        nginx_sites=sites,
        catch_alls=catch_alls,
        link_target=units.read_link(system, layout.upstream_link),
    )


def tree_dirs(layout: Layout) -> tuple[tuple[PurePosixPath, int], ...]:
    """The directories every deploy needs, with their modes: the release tree, integrator's
    state, and the ACME webroot (root's alone: tokens, render/nginx_acme.py)."""
    return (
        (layout.root, 0o755),
        (layout.releases, 0o755),
        (layout.state_dir, 0o700),
        (layout.acme_webroot, 0o755),
    )


def secret_dirs(layout: Layout) -> tuple[tuple[PurePosixPath, int], ...]:
    """The directories a service with secrets needs: the credentials are root-only."""
    return ((layout.etc_dir, 0o755), (layout.credentials_dir, 0o700))


def supplied_digests(secrets: Mapping[str, Path]) -> dict[str, str]:
    """`--secret NAME=FILE` as the plan sees them: name -> sha256 of the file's content."""
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in secrets.items()}


def _state(system: System, path: PurePosixPath, keep: bool) -> FileState | None:
    real = system.path(path)
    try:
        data = real.read_bytes()
        st = real.stat()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    digest = hashlib.sha256(data).hexdigest()
    return FileState(digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data if keep else None)
