"""Secrets: files supplied at deploy time, stored root-only, handed over with LoadCredential=.

They never travel inside a bundle, never appear in a unit file, the environment or a diff.
A secret the spec names but nobody supplied (and the host does not have yet) stops the deploy
before anything is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import EnvironmentProblem, SpecError, UsageError
from ..layout import Layout
from ..spec import ServiceSpec, check_secret_name
from .fs import Change, FileWriter
from .system import System


def parse_secret_args(values: Sequence[str]) -> dict[str, Path]:
    """`--secret NAME=FILE` values (repeatable), for both the integrator CLI and a bundle's own."""
    pairs: dict[str, Path] = {}
    for value in values:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            raise UsageError(f"--secret takes NAME=FILE, got {value[:70]!r}")
        try:  # the name becomes a file name on the host, here and in the remote staging directory
            check_secret_name(key, "--secret")
        except SpecError as exc:
            raise UsageError(exc.message) from None
        pairs[key] = Path(path)
    return pairs


def check_secrets(system: System, spec: ServiceSpec, layout: Layout, supplied: Mapping[str, Path]) -> None:
    """Fail early: unknown names, unreadable files, or a needed secret nowhere to be found."""
    unknown = sorted(set(supplied) - set(spec.secrets.files))
    if unknown:
        known = ", ".join(spec.secrets.files) or "none"
        raise UsageError(f"--secret {unknown[0]}: not in [secrets] files of {spec.name} ({known})")
    for name, path in supplied.items():
        if not path.is_file():
            raise UsageError(f"--secret {name}={path}: no such file")
    missing = [
        n
        for n in spec.secrets.files
        if n not in supplied and not system.path(layout.credentials_dir / n).is_file()
    ]
    if missing:
        raise UsageError(f"secret {missing[0]!r} is required by {spec.name}: pass --secret {missing[0]}=FILE")


# LoadCredential= arrived in systemd 247 (RHEL 9 and Debian 12 have 252; RHEL 8 has 239).
CREDENTIALS_SINCE = 247


def require_credentials(spec: ServiceSpec, systemd_version: int) -> None:
    """An older systemd ignores LoadCredential= with a warning: the app would start without
    its secrets. Refuse instead of shipping secrets some other, weaker way."""
    if spec.secrets.files and systemd_version < CREDENTIALS_SINCE:
        raise EnvironmentProblem(
            f"{spec.name} needs secrets ({', '.join(spec.secrets.files)}), "
            "handed over as systemd credentials "
            f"(LoadCredential=, systemd >= {CREDENTIALS_SINCE}); this host has systemd {systemd_version}"
        )


def install_secrets(
    writer: FileWriter, spec: ServiceSpec, layout: Layout, supplied: Mapping[str, Path]
) -> list[Change]:
    """Copy supplied secrets to credentials_dir (dir 0700, files 0600, root); content never shown."""
    if not spec.secrets.files:
        return []
    changes = [writer.ensure_dir(layout.etc_dir, 0o755), writer.ensure_dir(layout.credentials_dir, 0o700)]
    for name in spec.secrets.files:
        if name in supplied:
            changes.append(
                writer.put(layout.credentials_dir / name, supplied[name].read_bytes(), 0o600, secret=True)
            )
    return changes
