"""`integrator fleet VERB`: the handlers catalog.py names for the fleet verbs (build side).

Each takes typed values and forwards to the playbook runner in `fleet/__init__.py`.
"""

from __future__ import annotations

from pathlib import Path

from ..result import Result


def plan(bundle: Path, inventory: Path) -> Result:
    """ansible-playbook --check: a plan on each host, nothing changed."""
    from . import deploy

    return deploy(bundle, inventory, check=True)


def rollback(bundle: Path, inventory: Path, to: str | None = None) -> Result:
    from . import simple

    return simple("rollback", bundle, inventory, to=to)


def status(bundle: Path, inventory: Path) -> Result:
    from . import simple

    return simple("status", bundle, inventory)


def unlock(bundle: Path, inventory: Path) -> Result:
    from . import simple

    return simple("unlock", bundle, inventory)
