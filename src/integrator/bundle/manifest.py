"""manifest.json: what a bundle contains, and the checks that make it safe to unpack (HOST-SIDE).

The manifest lists every member of the .pyz with its sha256 and size; signing it (sign.py)
therefore covers every file. `verify_zip` refuses anything the manifest does not describe
exactly, and `extract_verified` re-hashes while writing, so a bundle changed between the
check and the unpack is still refused. Standard library only: this runs on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

from ..errors import BundleError, UsageError
from .lockfile import MAX_LOCK_BYTES, check_wheelhouse, match_wheels, parse_lock, wheel_unpacked_size
from .manifest_data import (
    FORMAT,
    LOCKS,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SPEC_PATH,
    STATIC,
    WHEELHOUSE,
    FileEntry,
    InstallTarget,
    Manifest,
)
from .members import MAX_UNPACKED_BYTES, SHEBANG, check_layout, check_member_name

# Re-exported: the zip writer, the host and tests name them here.
__all__ = [
    "FORMAT",
    "LOCKS",
    "MANIFEST_NAME",
    "SHEBANG",
    "SIGNATURE_NAME",
    "SPEC_PATH",
    "STATIC",
    "WHEELHOUSE",
    "FileEntry",
    "InstallTarget",
    "Manifest",
    "check_member_name",
]

_CHUNK = 1 << 20
_MAX_JSON_BYTES = 64 << 20  # manifest.json and spec.json are read whole: never more than this
_SPOOL = 32 << 20  # a wheel copy stays in memory up to this size, then goes to a temporary file


# --- checking a .pyz ---------------------------------------------------------------------


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such bundle") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path}: not a bundle (not a readable zip file: {exc})") from None


def _read_manifest(zf: zipfile.ZipFile, path: Path) -> Manifest:
    try:
        info = zf.getinfo(MANIFEST_NAME)
    except KeyError:
        raise BundleError(f"{path}: no {MANIFEST_NAME}: not an integrator bundle") from None
    if info.file_size > _MAX_JSON_BYTES:
        raise BundleError(f"{path}: {MANIFEST_NAME} is implausibly large ({info.file_size} bytes)")
    return Manifest.from_json(zf.read(info), str(path))


def _hash_stream(stream: IO[bytes], limit: int, sink: IO[bytes] | None = None) -> tuple[str, int]:
    """sha256 and length of at most `limit + 1` bytes: a lying size header cannot make us read forever."""
    digest, size = hashlib.sha256(), 0
    while size <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    """What people compare after a transfer, and how every member is pinned."""
    with open(path, "rb") as fh:
        return _hash_stream(fh, limit=1 << 62)[0]


def _check_content(
    zf: zipfile.ZipFile, name: str, entry: FileEntry, path: Path, sink: IO[bytes] | None
) -> None:
    info = zf.getinfo(name)
    if info.file_size != entry.size:
        raise BundleError(f"{path}: {name}: size {info.file_size} differs from the manifest ({entry.size})")
    try:
        with zf.open(info) as stream:
            digest, size = _hash_stream(stream, entry.size, sink)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # CRC mismatch, truncated data
        raise BundleError(f"{path}: {name}: unreadable ({exc})") from None
    if size != entry.size:
        raise BundleError(f"{path}: {name}: {size} bytes, the manifest says {entry.size}")
    if digest != entry.sha256:
        raise BundleError(f"{path}: {name}: sha256 differs from the manifest (changed after the build)")


def _verify_open(zf: zipfile.ZipFile, path: Path) -> Manifest:
    infos = check_layout(zf, path)
    manifest = _read_manifest(zf, path)
    members = {i.orig_filename for i in infos} - {MANIFEST_NAME, SIGNATURE_NAME}
    for name in sorted(members - set(manifest.files)):
        raise BundleError(f"{path}: member {name!r} is not in the manifest (added after the build)")
    for name in sorted(set(manifest.files) - members):
        raise BundleError(f"{path}: {name} is in the manifest but missing from the bundle")
    wheels = [name[len(WHEELHOUSE) + 1 :] for name in manifest.files if name.startswith(f"{WHEELHOUSE}/")]
    check_wheelhouse(sorted(wheels), str(path))
    unpacked = {}
    for name in sorted(manifest.files):
        if not name.startswith(f"{WHEELHOUSE}/"):
            _check_content(zf, name, manifest.files[name], path, sink=None)
            continue
        # A wheel is read once: hashed while copied, then its own central directory read from the copy.
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as copy:
            _check_content(zf, name, manifest.files[name], path, sink=copy)
            copy.seek(0)
            wheel = name[len(WHEELHOUSE) + 1 :]
            unpacked[wheel] = wheel_unpacked_size(copy, wheel, str(path))
    _check_references(zf, manifest, path, unpacked)
    return manifest


def _check_references(
    zf: zipfile.ZipFile, manifest: Manifest, path: Path, unpacked: Mapping[str, int]
) -> None:
    """The paths the host will open must be files this manifest vouches for, and agree with it."""
    needed = [SPEC_PATH, f"{WHEELHOUSE}/{manifest.app_wheel}"] + [t.lock for t in manifest.targets]
    for name in needed:
        if name not in manifest.files:
            raise BundleError(f"{path}: {MANIFEST_NAME} refers to {name}, which the bundle does not contain")
    try:
        spec = json.loads(_read_small(zf, SPEC_PATH, manifest, _MAX_JSON_BYTES, path).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path}: {SPEC_PATH} is not valid JSON: {exc}") from None
    if spec != manifest.spec:
        raise BundleError(f"{path}: {SPEC_PATH} and the spec in {MANIFEST_NAME} differ")
    _check_payload(zf, manifest, path, unpacked)


def _check_payload(zf: zipfile.ZipFile, manifest: Manifest, path: Path, unpacked: Mapping[str, int]) -> None:
    """Locks hold only pins, each wheel is pinned, and one target's wheels fit the cap (lockfile.py).

    `unpacked` is what each wheel (by file name) unpacks to, from its own central directory."""
    locks = {t.lock for t in manifest.targets}
    wheels: dict[str, str] = {}
    for name, entry in manifest.files.items():
        if name.startswith(f"{WHEELHOUSE}/"):
            wheels[name[len(WHEELHOUSE) + 1 :]] = entry.sha256
        elif name.startswith(f"{STATIC}/"):
            continue  # files nginx serves ([static]); never imported or executed
        elif name.startswith("payload/") and name != SPEC_PATH and name not in locks:
            raise BundleError(
                f"{path}: member {name!r} refused: the payload holds only spec.json, locks and wheels "
                f"(and files below {STATIC}/)"
            )
    pinned: set[str] = set()
    for lock in sorted(locks):
        if not lock.startswith(f"{LOCKS}/"):
            raise BundleError(f"{path}: {MANIFEST_NAME} names a lock outside {LOCKS}: {lock!r}")
        pins = parse_lock(_read_small(zf, lock, manifest, MAX_LOCK_BYTES, path), f"{path}: {lock}")
        chosen = match_wheels(pins, wheels, f"{path}: {lock}")
        if manifest.app_wheel not in chosen.values():
            raise BundleError(f"{path}: {lock} does not pin the app wheel {manifest.app_wheel}")
        venv_size = sum(unpacked[wheel] for wheel in chosen.values())
        if venv_size > MAX_UNPACKED_BYTES:
            raise BundleError(
                f"{path}: the wheels {lock} installs unpack to {venv_size} bytes, more than a bundle "
                f"may ({MAX_UNPACKED_BYTES}): a zip bomb in a wheel, or a service too large"
            )
        pinned |= set(chosen.values())
    for wheel in sorted(set(wheels) - pinned):
        raise BundleError(f"{path}: {WHEELHOUSE}/{wheel} is pinned by no lock (added after the build?)")


def _read_small(zf: zipfile.ZipFile, name: str, manifest: Manifest, limit: int, path: Path) -> bytes:
    """A member read whole into memory (its size is already checked against the manifest)."""
    if manifest.files[name].size > limit:
        raise BundleError(f"{path}: {name} is {manifest.files[name].size} bytes, more than {limit}")
    return zf.read(name)


def verify_zip(path: Path) -> Manifest:
    """Check every member against the manifest; return the manifest, or raise a one-line BundleError."""
    with _open_zip(path) as zf:
        return _verify_open(zf, path)


def read_signature(path: Path) -> bytes | None:
    """The raw manifest.json and nothing else is signed; this returns the detached signature, if any."""
    with _open_zip(path) as zf:
        try:
            return zf.read(SIGNATURE_NAME)
        except KeyError:
            return None


def read_manifest_bytes(path: Path) -> bytes:
    with _open_zip(path) as zf:
        try:
            return zf.read(MANIFEST_NAME)
        except KeyError:
            raise BundleError(f"{path}: no {MANIFEST_NAME}: not an integrator bundle") from None


def read_manifest_unverified(path: Path) -> Manifest:
    """Only for labels (the default service name of `status`): never for deciding what to install."""
    return Manifest.from_json(read_manifest_bytes(path), str(path))


def extract_verified(path: Path, dest: Path) -> Manifest:
    """Verify, then unpack every listed file below `dest` (an empty directory the caller made).

    Content is hashed again while it is written, from the same open file, so a bundle swapped
    or changed after the check is refused. Files are created with O_EXCL|O_NOFOLLOW: nothing
    outside `dest` is ever opened for writing. manifest.json is written beside the payload.
    """
    root = os.path.realpath(dest)
    if not os.path.isdir(root) or os.listdir(root):
        raise BundleError(f"{dest}: extraction needs an existing empty directory")
    with _open_zip(path) as zf:
        manifest = _verify_open(zf, path)
        for name in sorted(manifest.files):
            with _create_below(root, name) as out:
                _check_content(zf, name, manifest.files[name], path, sink=out)
        with _create_below(root, MANIFEST_NAME) as out:
            out.write(zf.read(MANIFEST_NAME))
    return manifest


def _create_below(root: str, name: str) -> IO[bytes]:
    """A new file (0644, directories 0755, whatever the umask: the service user reads them)."""
    parts = name.split("/")
    directory = root
    for part in parts[:-1]:
        directory = os.path.join(directory, part)
        if not os.path.isdir(directory):
            os.mkdir(directory)
            os.chmod(directory, 0o755)
    if os.path.commonpath([root, os.path.realpath(directory)]) != root:
        raise BundleError(f"{name}: would be written outside {root}")
    fd = os.open(
        os.path.join(directory, parts[-1]), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644
    )
    os.fchmod(fd, 0o644)
    return os.fdopen(fd, "wb")


def iter_wheels(manifest: Manifest) -> Iterator[str]:
    """Wheel member paths, for reports."""
    prefix = WHEELHOUSE + "/"
    return (name for name in sorted(manifest.files) if name.startswith(prefix) and name.endswith(".whl"))
