"""What a deploy or rollback that died part-way left behind, found and repaired by the next one.

A SIGKILL, a power loss, or a failure during a restore can leave the units and site of a
release that never became `current` (the unit runs B, `current` names A) and a record still
`deploying`. The next deploy or rollback, holding the lock, finds it (the lock file names the
step its dead holder was at; a record still says `deploying`) and before anything else writes
the units and site of `current` again, restarts and health-checks them, and settles the
records. It must come first: a deploy that then fails restores what it found, which has to be
a consistent state. `status` and `doctor` report the same facts (`find_interruption`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import IntegratorError
from ..layout import Layout
from ..result import Result
from . import bundleio, drain, processes, releases, units
from .activate import ActivationFailed, HostContext, check_serving, start_and_check
from .apply import activation_for
from .facts import current_release, probe_host
from .fs import FileWriter, remove_tree
from .interrupt import held
from .releases import DEPLOYING, INTERRUPTED, OK, DeployLock, LockNote, ReleaseRecord
from .system import System

# Steps of a deploy or rollback before any unit or site file is written.
EARLY_STEPS = ("locked", "check", "user", "unpack", "venv", "tls", "secrets", "labels")


@dataclass(frozen=True)
class Interruption:
    """A deploy or rollback that died part-way: its lock note, and the releases left `deploying`."""

    left: LockNote | None  # None: only a record says so (e.g. an integrator that kept no steps)
    deploying: tuple[str, ...]

    @property
    def touched_units(self) -> bool:
        """Whether it may have got as far as writing units or the site."""
        return self.left is None or self.left.step not in EARLY_STEPS

    @property
    def what(self) -> str:
        return f"interrupted {f'deploy of {self.what_ids}' if self.deploying else 'deploy or rollback'}"

    @property
    def what_ids(self) -> str:
        return ", ".join(self.deploying)

    def describe(self) -> str:
        where = f" (pid {self.left.pid} died at step {self.left.step})" if self.left else ""
        return f"{self.what}{where}"


def find_interruption(
    note: LockNote | None, records: Sequence[ReleaseRecord], held_now: bool = False
) -> Interruption | None:
    """Pure: a lock note left mid-way or a `deploying` record, while no live process holds the lock."""
    if held_now:
        return None  # a deploy is running: its `deploying` record is no accident
    left = note if note is not None and not note.finished else None
    deploying = tuple(r.id for r in records if r.outcome == DEPLOYING)
    if left is None and not deploying:
        return None
    return Interruption(left, deploying)


def settle(
    records: Sequence[ReleaseRecord], found: Interruption, current: str | None, serving: bool
) -> list[ReleaseRecord]:
    """Pure: the records after a repair. A `deploying` release that is `current` and serves
    had passed its health check before it died: ok. Any other is `interrupted`."""
    out = list(records)
    for rid in found.deploying:
        if rid == current and serving:
            out = releases.set_outcome(out, rid, OK, "interrupted after the switch; healthy at the repair")
        else:
            back = f"release {current}" if current else "no release (first deploy)"
            out = releases.set_outcome(out, rid, INTERRUPTED, f"{found.describe()}; repaired: {back}")
    return out


_RELEASE_IN_UNIT = re.compile(r"^ExecStart=\S*/releases/([^/\s]+)/", re.MULTILINE)


def unit_release(unit_text: str) -> str | None:
    """Pure: the release id a service unit runs (its ExecStart path), None if none."""
    m = _RELEASE_IN_UNIT.search(unit_text.replace("\r", "\n"))
    return m.group(1) if m else None


def installed_unit_release(system: System, layout: Layout) -> str | None:
    """The release the serving slot's unit runs (the slot the serving link points at)."""
    slot = units.serving_slot(system, layout)
    if slot is None:
        return None
    try:
        return unit_release(system.path(slot.service_unit_path).read_text(errors="replace"))
    except OSError:
        return None


@dataclass
class Repair:
    """What the repair found and did; `serving` is None when there was nothing to repair."""

    found: Interruption | None = None
    serving: bool | None = None
    lines: list[str] = field(default_factory=list)


def repair_interrupted(system: System, layout: Layout, lock: DeployLock) -> Repair:
    """Before a deploy or rollback: put back what a dead one left (held: signals wait until done)."""
    records = releases.load_records(system, layout)
    found = find_interruption(lock.left, records)
    if found is None:
        return Repair()
    with held():
        lock.step("repair")
        current = current_release(system, layout.current)
        serving, why = _put_back(system, layout, lock, current, found) if current else (False, "")
        releases.save_records(FileWriter(system), layout, settle(records, found, current, serving))
        for rid in found.deploying:
            if rid != current:
                remove_tree(system, layout.venv(rid))  # as after a failed deploy: kept, without venv
    if current is None:
        line = f"found an {found.describe()}: no release served before it; deploy again (or uninstall)"
    elif serving:
        line = f"found an {found.describe()}: release {current} put back and serving (health check passed)"
    else:
        line = f"found an {found.describe()}: release {current} put back but NOT serving: {why}"
    return Repair(found, serving, [line])


def _put_back(
    system: System, layout: Layout, lock: DeployLock, current: str, found: Interruption
) -> tuple[bool, str]:
    """Units and site of `current` written again and restarted (unless the dead holder never got
    to them and `current` still serves); True if it serves."""
    try:
        spec = bundleio.release_spec(system, layout, current)
        ctx = HostContext(system, probe_host(system), spec, layout, lock)
        if not found.touched_units and check_serving(ctx, deadline_s=5).ok:
            return True, ""
        activation = activation_for(ctx, current)
        writer = FileWriter(system)
        writer.put_rendered(activation.files)
        draining = start_and_check(ctx, activation, writer, reload=True)  # in the slot nginx did not route to
        drain.retire(system, spec, layout, activation, draining)  # the other one, maybe the dead run's
        processes.switch_to(ctx, current, Result())  # the workers too: the dead one may have switched
    except ActivationFailed as exc:
        return False, exc.reason
    except (IntegratorError, OSError) as exc:
        return False, str(exc)
    return True, ""


def interruption_report(system: System, layout: Layout, current: str | None) -> tuple[dict[str, object], str]:
    """For `status` and `doctor` (read-only): a deploy running now, or what a dead one left.

    Returns fields for status' data and a problem ("" if none): an interrupted deploy, or a
    service unit that runs another release than `current` names.
    """
    note, held_now = releases.lock_state(system, layout)
    found = find_interruption(note, releases.load_records(system, layout), held_now)
    runs = installed_unit_release(system, layout)
    info: dict[str, object] = {"unit_release": runs}
    if held_now and note is not None:
        info["deploying"] = {"pid": note.pid, "step": note.step}
        return info, ""
    if found is not None:
        info["interrupted"] = found.describe()
        where = f": pid {found.left.pid} died at step {found.left.step}" if found.left else ""
        return info, f"{found.what} (repaired by the next deploy or rollback){where}"
    if runs is not None and current is not None and runs != current:
        problem = f"the serving slot runs release {runs}, but current is {current}"
        return info, f"{problem} (repair: rollback --to {current})"
    return info, ""
