"""The two slots a service serves from, and the legacy unit pair they replaced (pure data).

A deploy starts the new release in the slot that is not serving, points the serving link at
its socket and drains the other (host/drain.py). nginx's upstream names the link
(Layout.upstream_link, a symlink to the serving slot's socket), and a unix-socket connect follows
a symlink each time, so switching slots is a rename, not an nginx reload. Which slot serves is
read from the site on disk and the link: a site from before the link names a slot's socket itself.
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


def serving_slot(
    site_text: str | None, link: str, link_target: str | None, candidates: tuple[Slot, ...]
) -> Slot | None:
    """The slot nginx routes to: the one the link points at when the site names the link (`link`,
    its path), else the one whose socket the site names (a site from before the link); None: no
    site, or it names none of them."""
    if not site_text:
        return None
    if f"server unix:{link};" in site_text:
        return next((s for s in candidates if str(s.socket_path) == link_target), None)
    return next((s for s in candidates if f"server unix:{s.socket_path};" in site_text), None)


def next_slot(serving: Slot | None, slots: tuple[Slot, Slot]) -> Slot:
    """Where a release starts: the slot that is not serving (the first one when none or the
    legacy pair serves)."""
    return slots[1] if serving is not None and serving.name == slots[0].name else slots[0]
