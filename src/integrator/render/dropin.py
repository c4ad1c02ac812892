"""The host's own configuration of a service: a systemd drop-in integrator owns (pure).

`integrator config set`, `scale` and `secret set` change a service without a new release: the
values live in `HostConfig` (recorded in /var/lib/integrator/NAME/host-config.json) and reach
systemd as /etc/systemd/system/NAME-.service.d/50-integrator-config.conf (both web slots and every
other NAME-* unit; NAME.service.d too, for a NAME.service of before slots). A drop-in is read after
the unit, so its `Environment=` lines win over the deploy's [env] (the base), and a deploy or a
rollback, which rewrite only the unit, keep it. gunicorn takes `GUNICORN_CMD_ARGS` over its
config file, so workers and threads change without touching the release's gunicorn.conf.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..layout import Layout
from .systemd import env_line

DROPIN_NAME = "50-integrator-config.conf"
GUNICORN_ENV = "GUNICORN_CMD_ARGS"  # set here, so never a host override of its own


@dataclass(frozen=True)
class HostConfig:
    """What this host sets on top of the release: variables, gunicorn's sizes, credentials added
    here (not in the release's [secrets]); `by`/`at`: the last change, as the drop-in says."""

    env: tuple[tuple[str, str], ...] = ()  # sorted by name
    workers: int | None = None
    threads: int | None = None
    secrets: tuple[str, ...] = ()  # sorted
    by: str = ""
    at: str = ""

    @property
    def empty(self) -> bool:
        return not (self.env or self.workers or self.threads or self.secrets)

    def same_values(self, other: HostConfig) -> bool:
        """Equal but for who changed it last and when."""
        return (self.env, self.workers, self.threads, self.secrets) == (
            other.env,
            other.workers,
            other.threads,
            other.secrets,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"env": dict(self.env), "workers": self.workers, "threads": self.threads,
                "secrets": list(self.secrets), "by": self.by, "at": self.at}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostConfig:
        """Read back (the host validates the values again: config_plan.check_config)."""
        env = data.get("env") or {}
        return cls(
            env=tuple(sorted((str(k), str(v)) for k, v in dict(env).items())),
            workers=_int_or_none(data.get("workers")),
            threads=_int_or_none(data.get("threads")),
            secrets=tuple(sorted(str(s) for s in data.get("secrets") or ())),
            by=str(data.get("by") or ""),
            at=str(data.get("at") or ""),
        )


NO_HOST_CONFIG = HostConfig()


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))


def dropin_paths(layout: Layout) -> tuple[PurePosixPath, ...]:
    """Where the drop-in goes: NAME.service.d, and NAME-.service.d, which systemd applies to
    every NAME-*.service (a prefix drop-in): the workers and timers of [processes]/[timers],
    `run`'s and a release command's units, and any other unit of the service's named NAME-X
    (a second gunicorn slot too), whatever a release adds; a service name has no `-`, so no
    other service's units start with it."""
    return tuple(
        layout.unit_dir / d / DROPIN_NAME for d in (f"{layout.name}.service.d", f"{layout.name}-.service.d")
    )


def gunicorn_args(config: HostConfig) -> str:
    """`--workers 4 --threads 2`: gunicorn reads GUNICORN_CMD_ARGS after its config file."""
    parts = [f"--workers {config.workers}"] if config.workers else []
    return " ".join([*parts, *([f"--threads {config.threads}"] if config.threads else [])])


def dropin_text(
    config: HostConfig, layout: Layout, path: PurePosixPath, host_secrets: tuple[str, ...]
) -> str:
    """The drop-in for `config`: a header saying who wrote it and how to change it, then the
    lines. `host_secrets`: the credentials it loads (those the release does not load itself)."""
    lines = [
        f"# {path}",
        f"# Written by integrator, last changed {config.at} by {config.by}. Change it with",
        f"# `integrator config set|unset {layout.name} ...`, `integrator scale {layout.name} ...` or",
        f"# `integrator secret set|rm {layout.name} ...`: local edits are lost on the next change.",
        "# Its values win over the release's unit (service.toml [env] is the base); deploys and",
        "# rollbacks keep this file.",
        "",
        "[Service]",
    ]
    args = gunicorn_args(config)
    if args:
        lines += ["# gunicorn: workers and threads set on this host (over the release's gunicorn.conf.py)",
                  env_line(GUNICORN_ENV, args)]  # fmt: skip
    if config.env:
        lines.append("# Environment set on this host")
        lines += [env_line(key, value) for key, value in config.env]
    if host_secrets:
        lines.append(f"# Credentials added on this host (root-only files in {layout.credentials_dir})")
        lines += [f"LoadCredential={name}:{layout.credentials_dir / name}" for name in host_secrets]
    return "\n".join(lines) + "\n"
