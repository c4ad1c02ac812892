"""A cache of each target's resolved dependency wheels, so a warm `bundle` asks the index nothing,
and of the app wheel its backend built from the same source tree (`app_wheel_key`).

What pip resolves for a target depends on the app's *metadata* (name, Requires-Dist,
Requires-Python), not its code: an edit-build loop keeps the same key and reuses the wheels
pip chose last time. The key also holds the target, requirements.txt, the always-added roots,
pip's version and every `PIP_*` variable and pip configuration file, so pointing pip at another
index resolves again. An entry is used for `MAX_AGE` seconds, then pip resolves again (new
releases are picked up); each cached wheel is checked against its sha256 before it is used,
and the lock made from it is proven complete (`locks.check_closure`) as any other. The app
wheel is keyed by every byte of the clean source copy the backend would build, the source time
(SOURCE_DATE_EPOCH: builds are reproducible), pip's version and configuration.
`INTEGRATOR_CACHE_DIR` moves the cache (default `$XDG_CACHE_HOME/integrator`, else
`~/.cache/integrator`); set it to `off` to resolve every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from .locks import pin_of, wheel_metadata
from .targets import TargetSpec

MAX_AGE = 3600
FORMAT = 1
PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")


def cache_dir() -> Path | None:
    configured = os.environ.get("INTEGRATOR_CACHE_DIR", "")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "integrator"


def _pip_config() -> dict[str, str]:
    """Everything that can point pip at another index: PIP_* variables and config files."""
    found = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    paths = [*PIP_CONFIG_FILES, os.environ.get("PIP_CONFIG_FILE", "")]
    if os.environ.get("VIRTUAL_ENV"):
        paths.append(os.path.join(os.environ["VIRTUAL_ENV"], "pip.conf"))
    for raw in paths:
        path = Path(raw).expanduser() if raw else None
        if path is not None and path.is_file():
            found[str(path)] = path.read_text(errors="replace")
    return found


def resolution_key(
    target: TargetSpec, app_wheel: Path, requirements: Path | None, roots: Sequence[str], pip_version: str
) -> str:
    meta = wheel_metadata(app_wheel)
    doc = {
        "format": FORMAT,
        "target": target.tag,
        "app": [str(meta["Name"]), sorted(meta.get_all("Requires-Dist") or []), str(meta["Requires-Python"])],
        "requirements": requirements.read_text() if requirements else None,
        "roots": sorted(roots),
        "pip": pip_version,
        "config": _pip_config(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def lookup(key: str, dest: Path, now: float | None = None) -> list[Path] | None:
    """The cached dependency wheels, copied into `dest` (created); None if absent, old or changed."""
    root = cache_dir()
    if root is None:
        return None
    try:
        entry = json.loads((root / "resolved" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    if (now if now is not None else time.time()) - float(entry.get("created", 0)) > MAX_AGE:
        return None
    dest.mkdir(parents=True)
    copied = []
    for item in entry["wheels"]:
        source = root / "wheels" / item["sha256"] / item["filename"]
        if source.is_file():
            shutil.copyfile(source, dest / item["filename"])
        if not source.is_file() or pin_of(dest / item["filename"]).sha256 != item["sha256"]:
            shutil.rmtree(dest, ignore_errors=True)  # removed or changed: resolve again
            return None
        copied.append(dest / item["filename"])
    return copied


def store(key: str, wheels: Sequence[Path], now: float | None = None) -> None:
    """Remember `wheels` (the dependencies, not the app) under `key`; a cache that fails is skipped."""
    root = cache_dir()
    if root is None:
        return
    try:
        items = []
        for wheel in wheels:
            pin = pin_of(wheel)
            target = root / "wheels" / pin.sha256 / wheel.name
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(wheel, target)
            items.append({"filename": wheel.name, "sha256": pin.sha256})
        entry = {"created": now if now is not None else time.time(), "wheels": items}
        path = root / "resolved" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=1))
        os.replace(tmp, path)
    except OSError:
        return


def app_wheel_key(source: Path, epoch: int, pip_version: str) -> str:
    """Every file of the clean source copy (path and bytes), the source time, pip and its config."""
    digest = hashlib.sha256(json.dumps([FORMAT, epoch, pip_version, _pip_config()], sort_keys=True).encode())
    for path in sorted(p for p in source.rglob("*") if p.is_file() or p.is_symlink()):
        digest.update(f"\0{path.relative_to(source).as_posix()}\0".encode())
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()


def cached_app_wheel(key: str, dest: Path, now: float | None = None) -> Path | None:
    """The app wheel built from the same tree within `MAX_AGE`, copied into `dest`; else None."""
    root = cache_dir()
    found = sorted((root / "app" / key).glob("*.whl")) if root is not None else []
    if len(found) != 1 or (now if now is not None else time.time()) - found[0].stat().st_mtime > MAX_AGE:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found[0], dest / found[0].name)
    return dest / found[0].name


def store_app_wheel(key: str, wheel: Path) -> None:
    root = cache_dir()
    if root is None:
        return
    try:
        (root / "app" / key).mkdir(parents=True, exist_ok=True)
        tmp = root / "app" / key / f".{wheel.name}.tmp"
        shutil.copyfile(wheel, tmp)
        os.replace(tmp, root / "app" / key / wheel.name)
    except OSError:
        return
