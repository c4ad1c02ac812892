"""The two slots a service serves from, and the legacy unit pair they replaced (pure data).

A deploy starts the new release in the slot that is not serving, switches nginx's upstream to
its socket and drains the other (host/drain.py). Which slot serves is read from the nginx site
on disk: the one file whose upstream says where requests go.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath as P

SLOTS = ("a", "b")
LEGACY = "legacy"


@dataclass(frozen=True)
class Slot:
    """A socket unit and the gunicorn service it activates: each slot is a hardened unit pair
    of its own, so a new release starts beside the serving one instead of in its place."""

    name: str  # a, b, or LEGACY
    unit: str  # the units' name without suffix: NAME-a (NAME for the legacy pair)
    unit_dir: P
    socket_path: P  # one socket per slot under the service's own /run dir

    @property
    def service_unit(self) -> str:
        return f"{self.unit}.service"

    @property
    def socket_unit(self) -> str:
        return f"{self.unit}.socket"

    @property
    def service_unit_path(self) -> P:
        return self.unit_dir / self.service_unit

    @property
    def socket_unit_path(self) -> P:
        return self.unit_dir / self.socket_unit

    @property
    def units(self) -> tuple[str, str]:
        """Service first: `systemctl stop` of both stops gunicorn, then its socket."""
        return (self.service_unit, self.socket_unit)

    @property
    def unit_paths(self) -> tuple[P, P]:
        return (self.service_unit_path, self.socket_unit_path)


def serving_slot(site_text: str | None, candidates: tuple[Slot, ...]) -> Slot | None:
    """The slot whose socket the site's upstream names (None: no site, or none of them)."""
    if not site_text:
        return None
    for slot in candidates:
        if f"server unix:{slot.socket_path};" in site_text:
            return slot
    return None


def next_slot(serving: Slot | None, slots: tuple[Slot, Slot]) -> Slot:
    """Where a release starts: the slot that is not serving (the first one when none or the
    legacy pair serves)."""
    return slots[1] if serving is not None and serving.name == slots[0].name else slots[0]
