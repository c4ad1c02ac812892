"""The zip around a bundle: member names, types, counts, sizes and bytes outside members (HOST-SIDE).

Checked from the central directory before any member is read, so a bundle that would
write outside its release, fail half-way on a name the file system refuses
(ENAMETOOLONG), or fill the disk (a zip bomb) is refused by `verify`, before a deploy
changes anything. The declared sizes are only a first filter: the reads that follow
(`manifest._hash_stream`) never take more than the size the manifest pins.
"""

from __future__ import annotations

import re
import stat
import struct
import zipfile
from pathlib import Path
from typing import IO

from ..errors import BundleError

SHEBANG = b"#!/usr/bin/env python3\n"
# Caps on what one bundle may unpack to (a real one is tens of MiB and a few hundred files).
MAX_MEMBERS = 20_000
MAX_UNPACKED_BYTES = 2 << 30
# NAME_MAX of Linux file systems; and a whole member name well below PATH_MAX (4096) with
# the release directory (/opt/NAME/releases/ID/) in front of it.
MAX_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 1024
_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory record, 22 bytes
_EOCD_SIGNATURE = b"PK\x05\x06"
_LOCAL = struct.Struct("<4s5H3I2H")  # local file header, 30 bytes; the last two: name and extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"


def check_member_name(name: str) -> str | None:
    """Why `name` may not be unpacked (None when it is safe): it must stay below the target dir."""
    if not name:
        return "empty name"
    if "\\" in name:
        return "backslash in name"
    if "\0" in name:
        return "NUL in name"
    if re.search(r"[^ -~]", name):
        return "control or non-ASCII character in name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if name.endswith("/"):
        return "directory entry"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in path"
    if "" in parts or "." in parts:
        return "empty or '.' path component"
    if len(name.encode()) > MAX_NAME_BYTES:
        return f"name longer than {MAX_NAME_BYTES} bytes"
    if any(len(part.encode()) > MAX_COMPONENT_BYTES for part in parts):
        return f"a path component longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def _check_info(info: zipfile.ZipInfo, source: str) -> None:
    name = info.orig_filename
    why = check_member_name(name)
    if why is None and info.filename != name:
        why = "name changed by zipfile (NUL or separator)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if why is None and kind == stat.S_IFLNK:
        why = "symbolic link"
    if why is None and kind not in (0, stat.S_IFREG):
        why = "not a regular file"
    if why is None and info.flag_bits & 0x1:
        why = "encrypted"
    if why is None and info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        why = f"unsupported compression {info.compress_type}"
    if why is not None:
        raise BundleError(f"{source}: member {name!r} refused: {why}")


def _check_names(infos: list[zipfile.ZipInfo], path: Path) -> None:
    """One name per file: no duplicate, none that differs only by case, no file that is also a dir."""
    seen: dict[str, str] = {}
    for info in infos:
        name = info.orig_filename
        folded = name.casefold()
        if folded in seen:
            other = seen[folded]
            if other == name:
                raise BundleError(f"{path}: member {name!r} appears twice")
            raise BundleError(f"{path}: member {name!r} differs from {other!r} only by case")
        seen[folded] = name
    for info in infos:
        _check_info(info, str(path))
    names = set(seen.values())
    dirs = {name.rsplit("/", 1)[0] for name in names if "/" in name}
    for name in sorted(names):
        parts = name.split("/")
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if name in dirs or prefixes & names:
            raise BundleError(f"{path}: member {name!r} is both a file and a directory")


def _check_sizes(infos: list[zipfile.ZipInfo], path: Path) -> None:
    """The caps, from the central directory: before one byte is decompressed."""
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"{path}: {len(infos)} members, more than a bundle may hold ({MAX_MEMBERS})")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED_BYTES:
        raise BundleError(
            f"{path}: members unpack to {total} bytes, more than a bundle may ({MAX_UNPACKED_BYTES}): "
            "a zip bomb, or a bundle that needs splitting"
        )


def _check_outside(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], path: Path) -> None:
    """Every byte is the shebang, a member, the central directory or the end record: no other."""
    with open(path, "rb") as fh:
        start = min(i.header_offset for i in infos)
        prefix = fh.read(start)
        if prefix not in (b"", SHEBANG):
            raise BundleError(
                f"{path}: unexpected {len(prefix)} bytes before the zip (only {SHEBANG!r} allowed)"
            )
        if zf.comment:
            raise BundleError(f"{path}: unexpected zip comment")
        size = fh.seek(0, 2)
        fh.seek(max(0, size - _EOCD.size))
        tail = fh.read(_EOCD.size)
        # zipfile takes a record found anywhere in the last 64 KiB; a bundle's must be the last 22 bytes.
        if len(tail) != _EOCD.size or tail[:4] != _EOCD_SIGNATURE or _EOCD.unpack(tail)[-1] != 0:
            raise BundleError(
                f"{path}: unexpected bytes after the end of the zip (appended data or a comment)"
            )
        central = size - _EOCD.size - _EOCD.unpack(tail)[5]  # where the central directory must start
        end = _members_end(fh, sorted(infos, key=lambda i: i.header_offset), start, path)
    if end != central:
        raise BundleError(
            f"{path}: unexpected {central - end} bytes between the members and the central directory"
        )


def _members_end(fh: IO[bytes], infos: list[zipfile.ZipInfo], position: int, path: Path) -> int:
    """Where the last member ends, if each starts where the one before ended (no hidden bytes)."""
    for info in infos:
        if info.header_offset != position:
            gap = info.header_offset - position
            raise BundleError(f"{path}: unexpected {gap} bytes before member {info.orig_filename!r}")
        if info.flag_bits & 0x08:
            raise BundleError(
                f"{path}: member {info.orig_filename!r} refused: written with a data descriptor"
            )
        fh.seek(position)
        header = fh.read(_LOCAL.size)
        if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIGNATURE:
            raise BundleError(f"{path}: member {info.orig_filename!r} has no local header where it should")
        name_length, extra_length = _LOCAL.unpack(header)[-2:]
        position += _LOCAL.size + name_length + extra_length + info.compress_size
    return position


def check_layout(zf: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    """Member names, types, count and sizes, and the bytes outside members that something could run."""
    infos = zf.infolist()
    if not infos:
        raise BundleError(f"{path}: empty zip file, not a bundle")
    _check_sizes(infos, path)
    _check_names(infos, path)
    _check_outside(zf, infos, path)
    return infos
