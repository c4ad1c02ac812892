"""Changing a few fields of a ServiceSpec in a test: `edit(SPEC, http={"https_port": 8443})`.

The spec is nested (one dataclass per table); this names the table of each change, so a test
reads like the service.toml it stands for. Unvalidated, like `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from integrator.spec import Service, ServiceSpec


def edit(spec: ServiceSpec, **tables: dict[str, Any]) -> ServiceSpec:
    """`spec` with the given keys of the given tables replaced."""
    changed = {name: dataclasses.replace(getattr(spec, name), **keys) for name, keys in tables.items()}
    return dataclasses.replace(spec, **changed)


def make(name: str, version: str, entry: str, **tables: dict[str, Any]) -> ServiceSpec:
    """A spec with defaults but for the identity and the given keys."""
    return edit(ServiceSpec(Service(name=name, version=version, entry=entry)), **tables)
