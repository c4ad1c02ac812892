"""The facts `config`, `scale` and `secret` decide from (host/config_plan.py), read once: the
serving release's spec, the configuration recorded on this host, the drop-ins as found, the
credentials' digests; and a secret's input file, read safely. Reads only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import HostError, UsageError
from ..layout import Layout
from ..render.dropin import HostConfig, dropin_paths
from ..spec import check_service_name
from . import bundleio
from .config_plan import SECRET_MAX_BYTES, ConfigFacts, check_config
from .facts import current_release
from .system import System


def config_record(layout: Layout) -> PurePosixPath:
    return layout.state_dir / "host-config.json"


def history_record(layout: Layout) -> PurePosixPath:
    return layout.state_dir / "config-history.json"


def load_config(system: System, layout: Layout) -> HostConfig:
    """The configuration recorded for this host (none: empty), checked again."""
    real = system.path(config_record(layout))
    try:
        if not real.is_file():
            return HostConfig()
        config = HostConfig.from_dict(json.loads(real.read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise HostError(f"{config_record(layout)} is not readable ({exc}); restore it or remove it") from None
    return check_config(config)


def load_history(system: System, layout: Layout) -> list[dict[str, object]]:
    real = system.path(history_record(layout))
    try:
        found = json.loads(real.read_text()) if real.is_file() else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def probe_config(system: System, name: str) -> ConfigFacts:
    """The facts a change is decided from, read once."""
    from .status import require_installed  # status -> repair -> apply: not at import time

    layout = require_installed(system, check_service_name(name))
    rid = current_release(system, layout.current)
    if rid is None:
        raise HostError(f"{name} has no serving release: deploy it first")
    spec = bundleio.release_spec(system, layout, rid)
    config = load_config(system, layout)
    dropins = {p: _read(system, p) for p in dropin_paths(layout)}
    credentials = {}
    for secret in {*spec.secrets.files, *config.secrets}:
        data = _read(system, layout.credentials_dir / secret)
        if data is not None:
            credentials[secret] = hashlib.sha256(data).hexdigest()
    return ConfigFacts(layout, rid, spec, config, dropins, credentials)


def _read(system: System, path: PurePosixPath) -> bytes | None:
    try:
        return system.path(path).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_secret_input(path: Path) -> bytes:
    """A secret's file, read once through one descriptor: a regular file, not a symlink, not
    writable by group or others, owned by root or the user behind sudo, 1 byte to 1 MiB."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        why = "a symlink: give the file itself" if os.path.islink(path) else exc.strerror
        raise UsageError(f"--from {path}: {why}") from None
    try:
        _check_input(path, os.fstat(fd))
        chunks, size = [], 0
        while size <= SECRET_MAX_BYTES:
            chunk = os.read(fd, SECRET_MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data or len(data) > SECRET_MAX_BYTES:
        raise UsageError(f"--from {path}: a secret holds 1 byte to {SECRET_MAX_BYTES // 1024} KiB")
    return data


def _check_input(path: Path, st: os.stat_result) -> None:
    sudo = os.environ.get("SUDO_UID", "")
    owners = {0, os.getuid(), *([int(sudo)] if sudo.isdigit() else [])}
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"--from {path}: not a regular file")
    if st.st_mode & 0o022:
        mode = f"{stat.S_IMODE(st.st_mode):o}"
        raise UsageError(f"--from {path}: writable by group or others (mode {mode}): chmod go-w it first")
    if st.st_uid not in owners:
        raise UsageError(
            f"--from {path}: owned by uid {st.st_uid}, not root or you: copy it to a file of yours"
        )
