"""The lock grammar and the wheelhouse rule: what the host may install (HOST-SIDE).

A lock is data, not a pip requirements file: pip would obey an option line in it
(`--no-binary evil` turns source builds back on, and a hash-pinned sdist's setup.py then
runs as root). So a lock holds nothing but `name==version --hash=sha256:HEX ...` lines
(canonical name, exact version, one or more hashes) and `#` comment lines, and the
wheelhouse nothing but wheel files that a lock line pins. `verify` checks both from the
zip; the host parses the extracted lock again right before installing, and installs only
the wheel files matched to its pins by sha256 (bundle/wheelinstall.py: no pip, nothing built).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import BundleError

MAX_LOCK_BYTES = 1 << 20
# Canonical (PEP 503) name, == an exact version, then one or more sha256 pins; nothing else.
_PIN_RE = re.compile(
    r"(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)==(?P<version>[0-9][0-9A-Za-z.!+_]*)"
    r"(?P<hashes>(?: --hash=sha256:[0-9a-f]{64})+)"
)
# A whole-line comment of printable ASCII without a backslash (pip joins `\`-ended lines).
_COMMENT_RE = re.compile(r"#[ -\[\]-~]*")
# name-version(-build)?-python-abi-platform.whl (PEP 427), with the characters wheels use.
_WHEEL_RE = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[0-9][0-9A-Za-z.!+_]*)"
    r"(?:-[0-9][A-Za-z0-9_.]*)?-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+\.whl"
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LockPin:
    """One lock line: a wheel of `name` at exactly `version`, whose sha256 is one of `hashes`."""

    name: str
    version: str
    hashes: tuple[str, ...]
    line: int


def canonical_name(name: str) -> str:
    """PEP 503: lower case, runs of `-_.` as one `-` (how locks name distributions)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_pin(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel file name, None when it is not one."""
    match = _WHEEL_RE.fullmatch(filename)
    return None if match is None else (canonical_name(match["name"]), match["version"])


def parse_lock(data: bytes, source: str) -> tuple[LockPin, ...]:
    """Every pin of a lock, or a one-line BundleError naming the first line that is not one."""
    if len(data) > MAX_LOCK_BYTES:
        raise BundleError(f"{source}: lock is {len(data)} bytes, more than {MAX_LOCK_BYTES}")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise BundleError(f"{source}: lock is not ASCII text") from None
    if not text.endswith("\n"):
        raise BundleError(f"{source}: lock does not end with a newline (truncated?)")
    pins: dict[str, LockPin] = {}
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        if _COMMENT_RE.fullmatch(line):
            continue
        match = _PIN_RE.fullmatch(line)
        if match is None:
            raise BundleError(
                f"{source}: line {number} is not `name==version --hash=sha256:...`: {line[:80]!r}; "
                "a lock holds only pins (no options, paths, URLs or blank lines): rebuild the bundle"
            )
        name = match["name"]
        if name in pins:
            raise BundleError(f"{source}: line {number} pins {name} again (line {pins[name].line})")
        hashes = tuple(h.split(":", 1)[1] for h in match["hashes"].split())
        pins[name] = LockPin(name, match["version"], hashes, number)
    if not pins:
        raise BundleError(f"{source}: lock pins nothing")
    return tuple(pins.values())


def match_wheels(pins: Sequence[LockPin], wheels: Mapping[str, str], source: str) -> dict[LockPin, str]:
    """For each pin, the wheel (file name -> sha256 in `wheels`) it installs; refuse a pin without one."""
    chosen: dict[LockPin, str] = {}
    for pin in pins:
        found = [
            filename
            for filename, digest in sorted(wheels.items())
            if wheel_pin(filename) == (pin.name, pin.version) and digest in pin.hashes
        ]
        if not found:
            raise BundleError(
                f"{source}: line {pin.line} pins {pin.name}=={pin.version}, but no wheel in the "
                "wheelhouse has that name, version and hash"
            )
        chosen[pin] = found[0]
    return chosen


def check_wheelhouse(names: Iterable[str], source: str) -> None:
    """Every wheelhouse member must be a wheel file name directly in it (no sdist, no subdirectory)."""
    for name in names:
        if wheel_pin(name) is None:
            raise BundleError(
                f"{source}: wheelhouse member {name!r} refused: not a wheel file name "
                "(a bundle installs wheels only, never builds from source)"
            )


def wheel_unpacked_size(stream: IO[bytes], filename: str, source: str) -> int:
    """What pip will unpack from one wheel, read from its central directory; refuse a non-wheel.

    A wheel is a zip holding NAME-VERSION.dist-info/WHEEL at its top: anything else (an sdist
    given a wheel's name) would only fail inside pip, after the deploy has begun.
    """
    try:
        with zipfile.ZipFile(stream) as wheel:
            infos = wheel.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise BundleError(f"{source}: {filename} is not a wheel (not a zip file: {exc})") from None
    name = (wheel_pin(filename) or ("?", ""))[0]
    suffix = ".dist-info/WHEEL"
    dist_infos = [i.filename[: -len(suffix)] for i in infos if i.filename.endswith(suffix)]
    if not any("/" not in d and canonical_name(d.rsplit("-", 1)[0]) == name for d in dist_infos):
        raise BundleError(f"{source}: {filename} is not a wheel (it has no {name}-VERSION.dist-info/WHEEL)")
    return sum(i.file_size for i in infos)


def wheelhouse_files(wheelhouse: Path) -> dict[str, str]:
    """File name -> sha256 of every wheel in an extracted wheelhouse; anything else is refused."""
    files = {}
    for entry in sorted(wheelhouse.iterdir()):
        if entry.is_symlink() or not entry.is_file():
            raise BundleError(f"{entry}: not a regular file in the wheelhouse")
        check_wheelhouse([entry.name], str(wheelhouse))
        digest = hashlib.sha256()
        with open(entry, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        files[entry.name] = digest.hexdigest()
    return files
