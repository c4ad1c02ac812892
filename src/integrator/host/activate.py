"""Activation, drain-first: write a release's slot units and site, start the slot, prove it
answers on its socket, point the serving link at it (nginx's upstream; a reload only when a file
nginx reads changed), prove it serves, switch `current`, drain the old slot.

Shared by deploy, rollback, repair and config restarts (`activate`, the one entry point).
Every file goes through one FileWriter, so on any failure before the switch the previous files
come back exactly (the serving link points at the slot that served, never stopped), the previous slot
is made sure to run and is checked, and `current` never moved. "Any failure" means
every exception: a failed check, an OSError of any errno (a full disk, a name too long), a
signal (interrupt.py turns SIGINT/SIGTERM/SIGHUP into one), even a bug (restored, then re-raised).
"""

from __future__ import annotations

import contextlib
import errno
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import IntegratorError
from ..layout import Layout
from ..render.tls_watch import watched
from ..spec import ServiceSpec
from . import bundleio, drain, units
from .facts import HostFacts
from .fs import Change, FileWriter, replace_link
from .health import Probe, check_name, wait_healthy, wait_socket_healthy
from .interrupt import hold_signals, signal_name
from .progress import step as announce
from .system import System
from .tls import tls_files

if TYPE_CHECKING:
    from ..render import RenderedFile
    from .release_plan import Activation
    from .releases import DeployLock


@dataclass(frozen=True)
class HostContext:
    """One service on this host, with the facts probed before any change."""

    system: System
    facts: HostFacts
    spec: ServiceSpec
    layout: Layout
    lock: DeployLock | None = None  # where the current step is recorded (None: not recorded)

    def progress(self, step: str) -> None:
        """Record the step now running in the lock file (`status` shows it) and announce it
        (host/progress.py: a line as it starts, also over ssh)."""
        if self.lock is not None:
            self.lock.step(step)
        announce(step)

    @property
    def step(self) -> str:
        return self.lock.current_step if self.lock is not None else ""


@dataclass
class Outcome:
    """How an activation ended; on failure, whether the previous release serves again."""

    ok: bool
    reason: str = ""
    journal: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    restored: bool | None = None  # None: there was nothing to restore (first deploy)
    interrupted: str = ""  # the signal that stopped it: SIGINT, SIGTERM or SIGHUP
    signum: int = 0


class ActivationFailed(Exception):
    """Internal: carries the reason and journal lines to the restore step."""

    def __init__(self, reason: str, journal: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.journal = journal or []


def render_for(ctx: HostContext, release_id: str) -> list[RenderedFile]:
    """Every file of a release, rendered for this host's nginx version (pure, in memory)."""
    from ..render import render_all

    return render_all(ctx.spec, ctx.layout, release_id, nginx_version=ctx.facts.nginx_version)


def health_url(spec: ServiceSpec) -> str:
    return f"https://127.0.0.1:{spec.http.https_port}{spec.http.health_path} (Host: {check_name(spec)})"


@dataclass(frozen=True)
class Previous:
    """The release serving before this activation, with the spec it was deployed with."""

    release_id: str
    spec: ServiceSpec


def previous_release(system: System, layout: Layout, release_id: str | None) -> Previous | None:
    """`release_id` (the one serving now) as what a failed activation restores; None if none."""
    return Previous(release_id, bundleio.release_spec(system, layout, release_id)) if release_id else None


def activate(ctx: HostContext, writer: FileWriter, plan: Activation, previous: Previous | None) -> Outcome:
    """Make `plan.release_id` serve, drain-first, or put `previous` back; never leaves a
    half-written config. The one entry point for every activation (deploy, rollback, repair,
    config restarts): the release starts in its own slot, answers on its socket, the serving
    link is pointed at it, then the slot that served is drained and stopped (host/drain.py)."""
    changes: list[Change] = []
    try:
        ctx.progress("write")
        changes = writer.put_rendered(plan.files)
        # A port this release left (its spec changed) keeps no catch-all: undone with the rest.
        # So does a watch of a provided certificate when the mode changed: stopped, then removed.
        if plan.stop_tls_watch:
            units.tls_watch(ctx.system, ctx.layout, on=False)
        changes += [writer.remove(p) for p in plan.remove]
        draining = start_and_check(ctx, plan, writer)
        hold_signals()  # it serves and passed: switching must not be cut short
        ctx.progress("switch")
        switch_current(ctx.system, ctx.layout, plan.release_id)
    except BaseException as exc:
        failure = failure_of(exc, ctx.step)
        restored = restore(ctx, writer, plan, previous)
        if failure is None:
            raise  # a bug: the files are back, the traceback stays
        failure.changes, failure.restored = changes, restored
        return failure
    ctx.progress("drain")
    changes += drain.retire(ctx.system, ctx.spec, ctx.layout, plan, draining)
    return Outcome(True, changes=changes)


def failure_of(exc: BaseException, step: str = "") -> Outcome | None:
    """An exception during a deploy or rollback as a failed Outcome; None for a bug."""
    if isinstance(exc, ActivationFailed):
        return Outcome(False, exc.reason, exc.journal)
    if isinstance(exc, IntegratorError):
        return Outcome(False, exc.message)
    if isinstance(exc, KeyboardInterrupt):
        from .interrupt import signal_number

        name = signal_name(exc)
        at = f" at step {step}" if step else ""
        return Outcome(False, f"interrupted by {name}{at}", interrupted=name, signum=signal_number(exc))
    if isinstance(exc, OSError):
        return Outcome(False, os_error_text(exc))
    return None


def os_error_text(exc: OSError) -> str:
    """`No space left on device (ENOSPC): /opt/shop/releases/...`: the cause, its name, the path."""
    code = errno.errorcode.get(exc.errno or 0, "")
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{f' ({code})' if code else ''}{where}"


def start_and_check(ctx: HostContext, plan: Activation, writer: FileWriter, reload: bool = False) -> set[int]:
    """nginx -t, start the release's slot (nginx still routes to the other one), prove it
    answers on its own socket, (re)start the watch of a provided certificate, point the serving
    link at it (the switch: new connections follow the link), reload nginx only if a file it
    reads changed (or `reload`: a repair), and prove it serves through nginx. Returns nginx's
    workers from before a reload: the ones still finishing requests to the old slot."""
    system, slot = ctx.system, ctx.layout.slot(plan.slot)
    ctx.progress("nginx-test")
    units.nginx_check(system)
    ctx.progress("start")
    units.daemon_reload(system)
    started = units.start_slot(system, slot)
    ctx.progress("slot-health")
    probe = wait_socket_healthy(ctx.spec, str(system.path(slot.socket_path)))
    if not probe.ok:
        reason = f"health check {ctx.spec.http.health_path} on {slot.socket_path} failed: {probe.detail}"
        raise ActivationFailed(reason, units.journal_tail(system, slot, since=started))
    if plan.tls_watch:
        units.tls_watch(system, ctx.layout, on=True)
    ctx.progress("route")
    writer.put_link(ctx.layout.upstream_link, str(slot.socket_path))
    draining: set[int] = set()
    found_nginx = None  # set when the reload started a stopped nginx
    if reload or nginx_must_reload(ctx, writer):
        ctx.progress("nginx-reload")
        draining = units.nginx_workers(system)
        found_nginx = units.nginx_reload(system)
    ctx.progress("health")
    probe = check_serving(ctx)
    if probe.ok:  # once more after a pause: a crash-looping app can answer once, then die
        time.sleep(0.5)
        probe = check_serving(ctx, deadline_s=0)
        if probe.ok and not units.is_active(system, slot.service_unit):
            probe = Probe(False, 0, f"{slot.service_unit} is not active")
    if not probe.ok:
        reason = f"health check {health_url(ctx.spec)} failed: {probe.detail}"
        journal = units.journal_tail(system, slot, since=started)
        if found_nginx is not None:
            units.put_nginx_back(system, found_nginx)  # the restore leaves a stopped nginx stopped
        raise ActivationFailed(reason, journal)
    return draining


def nginx_must_reload(ctx: HostContext, writer: FileWriter) -> bool:
    """Only a file nginx reads (its configuration, the service's certificate) needs a reload, or
    an nginx that is not running (the reload starts it). A reload closes every idle keep-alive
    connection of every site on the host; a client that sent a request at that instant gets an
    error: a deploy that changes only the app does not reload."""
    return any(ctx.layout.nginx_reads(p) for p in writer.written()) or not units.is_active(
        ctx.system, units.NGINX
    )


def check_serving(ctx: HostContext, deadline_s: float = 20.0) -> Probe:
    return wait_healthy(ctx.spec, tls_files(ctx.spec, ctx.layout).verify_against, deadline_s)


def restore(ctx: HostContext, writer: FileWriter, plan: Activation, previous: Previous | None) -> bool | None:
    """Put the previous files back (the serving link and the site route to the slot that
    served, which was never stopped), then stop the new slot once nginx has nothing left on it,
    make sure the old slot runs, reload nginx if a file it reads was put back; True if it
    serves again.

    Never raises: the files are back first, and a systemd or nginx that refuses to restart
    them must not hide the original failure (or skip the first-deploy cleanup after it).
    Signals arriving from here on are held, not acted on: a second Ctrl-C does not cut it short.
    """
    hold_signals()
    ctx.progress("restore")
    written = writer.written()
    reload = any(ctx.layout.nginx_reads(p) for p in written)
    writer.undo()
    new = ctx.layout.slot(plan.slot)
    with contextlib.suppress(IntegratorError, OSError):  # loaded still (no daemon-reload yet): stop works
        if ctx.layout.upstream_link in written:
            units.wait_unused(ctx.system, new.socket_path, float(ctx.spec.server.graceful_timeout))
        units.stop_slot(ctx.system, new)
    try:
        back = _restart_previous(ctx, previous, reload)
    except (IntegratorError, OSError):
        return None if previous is None else False
    return False if writer.undo_failures and back else back


def _restart_previous(ctx: HostContext, previous: Previous | None, reload: bool) -> bool | None:
    units.daemon_reload(ctx.system)
    if previous is None:
        units.stop_and_disable(ctx.system, ctx.layout)
        units.daemon_reload(ctx.system)
        units.reload_nginx_if_valid(ctx.system)
        return None
    serving = units.serving_slot(ctx.system, ctx.layout)  # the site and link put back say which
    if serving is not None:
        units.ensure_started(ctx.system, serving)
    units.tls_watch(ctx.system, ctx.layout, on=watched(previous.spec))
    if reload:
        units.reload_nginx_if_valid(ctx.system)
    return check_serving(replace(ctx, spec=previous.spec)).ok


def switch_current(system: System, layout: Layout, release_id: str) -> None:
    """Point `current` at the release with a symlink + rename: atomic for every reader."""
    replace_link(system.path(layout.current), f"releases/{release_id}")
