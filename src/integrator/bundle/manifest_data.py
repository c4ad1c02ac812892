"""manifest.json as data (HOST-SIDE): the Manifest, its targets and file entries, read strictly.

The checks that make a bundle safe to unpack are in manifest.py. Standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BundleError

FORMAT = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
# Where the payload lives inside the bundle (and below an extraction directory).
SPEC_PATH = "payload/spec.json"
WHEELHOUSE = "payload/wheelhouse"
LOCKS = "payload/locks"
STATIC = "payload/static"  # [static] directories, as they are in the project: served by nginx

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class InstallTarget:
    """One (Python, machine) pair the bundle can install on, and the lock that does it."""

    python: str  # "3.9"
    machine: str  # "x86_64"
    platform: str  # newest wheel platform admitted, e.g. "manylinux_2_28_x86_64"
    glibc: str | None  # oldest glibc the chosen wheels run on; None: all pure Python
    lock: str  # member path, e.g. "payload/locks/cp39-x86_64.txt"

    @property
    def tag(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}"


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    source_commit: str | None
    dirty: bool
    built_at: str  # ISO 8601 UTC; the source time (SOURCE_DATE_EPOCH / commit), for reproducibility
    builder: str  # "integrator 0.1.0"
    app_wheel: str  # file name below WHEELHOUSE
    spec: Mapping[str, Any]  # ServiceSpec.to_dict(); the same as payload/spec.json, checked
    targets: tuple[InstallTarget, ...]
    files: Mapping[str, FileEntry]
    format: int = FORMAT

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, fixed layout): two builds of one input sign identically."""
        data = {
            "format": self.format,
            "name": self.name,
            "version": self.version,
            "source_commit": self.source_commit,
            "dirty": self.dirty,
            "built_at": self.built_at,
            "builder": self.builder,
            "app_wheel": self.app_wheel,
            "spec": dict(self.spec),
            "targets": [vars(t) for t in self.targets],
            "files": {path: vars(entry) for path, entry in sorted(self.files.items())},
        }
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> Manifest:
        """Parse strictly: a manifest is what every other check trusts, so no field is optional."""
        try:
            data = json.loads(raw.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"{source}: {MANIFEST_NAME} is not valid JSON: {exc}") from None
        _expect_keys(data, _MANIFEST_KEYS, source, MANIFEST_NAME)
        if data["format"] != FORMAT:
            raise BundleError(
                f"{source}: bundle format {data['format']!r} is not {FORMAT}: use a matching integrator"
            )
        targets = tuple(_target(t, source) for t in _typed(data["targets"], list, source, "targets"))
        files = {
            path: _file_entry(path, entry, source)
            for path, entry in _typed(data["files"], dict, source, "files").items()
        }
        commit = data["source_commit"]
        if commit is not None:
            _typed(commit, str, source, "source_commit")
        return cls(
            name=_typed(data["name"], str, source, "name"),
            version=_typed(data["version"], str, source, "version"),
            source_commit=commit,
            dirty=_typed(data["dirty"], bool, source, "dirty"),
            built_at=_typed(data["built_at"], str, source, "built_at"),
            builder=_typed(data["builder"], str, source, "builder"),
            app_wheel=_typed(data["app_wheel"], str, source, "app_wheel"),
            spec=_typed(data["spec"], dict, source, "spec"),
            targets=targets,
            files=files,
        )


_MANIFEST_KEYS = {"format", "name", "version", "source_commit", "dirty", "built_at", "builder", "app_wheel"}
_MANIFEST_KEYS |= {"spec", "targets", "files"}
_TARGET_KEYS = {"python", "machine", "platform", "glibc", "lock"}


def _expect_keys(data: Any, keys: set[str], source: str, what: str) -> None:
    if not isinstance(data, dict):
        raise BundleError(f"{source}: {what} must be a JSON object")
    if set(data) != keys:
        extra, missing = sorted(set(data) - keys), sorted(keys - set(data))
        raise BundleError(f"{source}: {what}: unexpected keys {extra}, missing keys {missing}")


def _typed(value: Any, kind: type, source: str, what: str) -> Any:
    # bool is an int subclass: a size of `true` must not pass
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{source}: {MANIFEST_NAME}: {what} must be a {kind.__name__}, got {value!r}")
    return value


def _target(data: Any, source: str) -> InstallTarget:
    _expect_keys(data, _TARGET_KEYS, source, "a target")
    glibc = data["glibc"]
    return InstallTarget(
        python=_typed(data["python"], str, source, "target python"),
        machine=_typed(data["machine"], str, source, "target machine"),
        platform=_typed(data["platform"], str, source, "target platform"),
        glibc=None if glibc is None else _typed(glibc, str, source, "target glibc"),
        lock=_typed(data["lock"], str, source, "target lock"),
    )


def _file_entry(path: str, data: Any, source: str) -> FileEntry:
    _expect_keys(data, {"sha256", "size"}, source, f"files[{path!r}]")
    digest = _typed(data["sha256"], str, source, f"{path} sha256")
    if not _SHA256_RE.match(digest):
        raise BundleError(f"{source}: {MANIFEST_NAME}: {path}: sha256 must be 64 lowercase hex digits")
    size = _typed(data["size"], int, source, f"{path} size")
    if size < 0:
        raise BundleError(f"{source}: {MANIFEST_NAME}: {path}: negative size")
    return FileEntry(sha256=digest, size=size)
