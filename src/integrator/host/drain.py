"""The last step of a drain-first activation: retire the slot that served before the switch.

Once nginx routes to the new slot (its reload started new workers), the workers of the old
configuration finish the requests they have, close their keep-alive connections to the old
gunicorn and exit: only then can nothing reach the old slot any more. So: wait for those
workers to be gone (up to the service's graceful_timeout: a stream or websocket may hold one
longer), then stop the old slot (SIGTERM: gunicorn finishes what it still has within
graceful_timeout, TimeoutStopSec= kills the rest) and disable it, so a reboot starts only the
slot that serves. A legacy pair (NAME.service, deploys before slots) is removed after that.

After the switch nothing here may fail the deploy: the new release serves. What did not go as
planned is a line in the result (a worker still there, a unit that would not stop).
"""

from __future__ import annotations

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
    removed. `draining`: nginx's workers from before the switch."""
    if plan.retire is None:
        return []
    old = retired_slot(layout, plan.retire)
    units.wait_gone(system, draining, float(spec.server.graceful_timeout))
    units.stop_slot(system, old)
    writer = FileWriter(system)
    removed = [writer.remove(p) for p in plan.retire_files]
    if removed:
        units.daemon_reload(system)
        system.run(["systemctl", "reset-failed", *old.units], check=False)
    return removed


def retired_slot(layout: Layout, name: str) -> Slot:
    return layout.legacy if name == LEGACY else layout.slot(name)
