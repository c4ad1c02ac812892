"""The last step of a drain-first activation: retire the slot that served before the switch.

Once the serving link points at the new slot, every new connection nginx opens goes there; the
connections it already has to the old gunicorn finish the request they carry and are closed
by nginx itself (kept at most SLOT_CONN_LIFE_S of use or SLOT_IDLE_S idle, render/common.py),
and workers of an older nginx configuration (when the deploy reloaded it) exit once they
are done. Only when the old socket has no connection left (accepted or queued, read from
/proc/net/unix) can nothing reach the old slot any more; a gunicorn that closed a kept
connection itself could race a request nginx sends on it, and a POST is never retried. So:
wait for that (up to the service's graceful_timeout: a stream or websocket may hold one
longer), then stop the old slot (SIGTERM: gunicorn finishes what it still has within
graceful_timeout, TimeoutStopSec= kills the rest) and disable it, so a reboot starts only the
slot that serves. A legacy pair (NAME.service, deploys before slots) is removed after that.

After the switch nothing here may fail the deploy: the new release serves. What did not go as
planned is a line in the result (a worker still there, a unit that would not stop).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..layout import Layout
from ..slots import LEGACY, Slot
from ..spec import ServiceSpec
from . import units
from .fs import Change, FileWriter
from .system import System

if TYPE_CHECKING:
    from .activation_plan import Activation


def retire(
    system: System, spec: ServiceSpec, layout: Layout, plan: Activation, draining: set[int]
) -> list[Change]:
    """Drain and stop `plan.retire` (nothing on a first start); returns the legacy unit files
    removed. `draining`: nginx's workers from before a reload (none when it did not reload)."""
    if plan.retire is None:
        return []
    old = retired_slot(layout, plan.retire)
    end = time.monotonic() + float(spec.server.graceful_timeout)
    units.wait_gone(system, draining, end - time.monotonic())
    units.wait_unused(system, old.socket_path, max(0.0, end - time.monotonic()))
    units.stop_slot(system, old)
    writer = FileWriter(system)
    removed = [writer.remove(p) for p in plan.retire_files]
    if removed:
        units.daemon_reload(system)
        system.run(["systemctl", "reset-failed", *old.units], check=False)
    return removed


def retired_slot(layout: Layout, name: str) -> Slot:
    return layout.legacy if name == LEGACY else layout.slot(name)
