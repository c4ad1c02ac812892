"""What one deploy was asked to do, as one value (HOST-SIDE).

The deploy verb has two handlers, the operator's (targets/commands.py `deploy`, which reads the
bundle and sends it) and the host's (host/verbs.py `deploy`/`deploy_here`); both take this one
frozen type, built once from the parsed command line (`verbtable.Verb.call`, its `takes`), so
the options are declared once (catalog_host.py) and not re-listed in every handler. It lives
host-side because the operator side may import host modules, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


@dataclass(frozen=True)
class DeployOptions:
    """`bundle`: the .pyz; `plan_only`: `--plan`; `secrets`: `--secret NAME=FILE`;
    `allowed_signers`: `--allowed-signers` (checked on the operator's side, not sent);
    `sha256`: `--sha256`; `release_id`: `--release-id` (a fleet's, one for every host)."""

    bundle: Path
    plan_only: bool = False
    secrets: Mapping[str, Path] = field(default_factory=dict)
    allowed_signers: Path | None = None
    sha256: str | None = None
    release_id: str | None = None

    def __post_init__(self) -> None:
        # frozen all the way down: a handler cannot change the secrets another one sees
        object.__setattr__(self, "secrets", MappingProxyType(dict(self.secrets or {})))
