"""Write the .pyz: a reproducible zip of the host-side code and the payload, behind a shebang.

Reproducible means two builds of the same inputs are byte-identical, so the sha256 people
compare after a transfer also proves what was built: entries sorted, one timestamp (the
source time), fixed permissions, no directory entries, one compression setting, and the
manifest (then its signature) last.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Union

from ..errors import BundleError
from .manifest import (
    LOCKS,
    MANIFEST_NAME,
    SHEBANG,
    SIGNATURE_NAME,
    SPEC_PATH,
    WHEELHOUSE,
    FileEntry,
    sha256_file,
)
from .source import ZIP_EPOCH
from .wheels import Wheelhouse

# What runs on the host, relative to the `integrator` package: the one list of host-side code.
# A bundle carries exactly these. Directories are taken whole (every file but bytecode), so
# modules added to them later ship without editing this. Each of these may import only the
# standard library and each other (tests/test_layers.py): host/ may use the bundle's readers
# listed here, which import nothing from host/ and nothing build-side.
HOST_SIDE = (
    "__init__.py",
    "catalog_host.py",
    "verbtable.py",
    "errors.py",
    "result.py",
    "spec",
    "layout.py",
    "slots.py",
    "render",
    "host",
    "bundle/__init__.py",
    "bundle/manifest.py",
    "bundle/manifest_data.py",
    "bundle/members.py",
    "bundle/lockfile.py",
    "bundle/venv.py",
    "bundle/wheelinstall.py",
    "bundle/sign.py",
    "bundle/verify.py",
)
# The host tool (`integrator --ssh/--host`, targets/transport.py `host_tool`) runs a verb on the
# host with the host-side command line (host/pyzmain.py `tool_main`): exactly the host-side code.
HOST_TOOL = HOST_SIDE
PACKAGE = "integrator"

MAIN_PY = b'''\
"""Run an integrator bundle: python3 BUNDLE.pyz --help"""
import sys

if sys.version_info < (3, 9):
    sys.exit("integrator bundles need Python >= 3.9, this is " + sys.version.split()[0])

from integrator.host.pyzmain import main

sys.exit(main())
'''

COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESSLEVEL = 6
FILE_MODE = 0o644

Source = Union[bytes, Path]


def package_dir() -> Path:
    """The installed `integrator` package whose host-side code goes into the bundle."""
    return Path(__file__).resolve().parent.parent


def source_files(directory: Path) -> list[Path]:
    """Every file below `directory` but bytecode, sorted: what a zip of Python code carries."""
    return [
        file
        for file in sorted(directory.rglob("*"))
        if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo")
    ]


def host_code(package: Path, entries: Sequence[str] = HOST_SIDE) -> dict[str, Path]:
    """Member name -> source file for HOST_SIDE (or HOST_TOOL); a missing listed file is a broken install."""
    members: dict[str, Path] = {}
    for entry in entries:
        path = package / entry
        if path.is_dir():
            for file in source_files(path):
                members[f"{PACKAGE}/{file.relative_to(package).as_posix()}"] = file
        elif path.is_file():
            members[f"{PACKAGE}/{entry}"] = path
        elif not entry.endswith(".py"):
            continue  # a host-side package not written yet
        else:
            raise BundleError(f"{path}: missing from the installed integrator package")
    return members


def payload(spec_json: bytes, house: Wheelhouse) -> dict[str, Source]:
    members: dict[str, Source] = {SPEC_PATH: spec_json}
    for wheel in house.wheels():
        members[f"{WHEELHOUSE}/{wheel.name}"] = wheel
    for lock in house.locks:
        members[f"{LOCKS}/{lock.target.tag}.txt"] = lock.text.encode()
    return members


def file_entries(members: Mapping[str, Source]) -> dict[str, FileEntry]:
    entries = {}
    for name, source in members.items():
        if isinstance(source, bytes):
            entries[name] = FileEntry(hashlib.sha256(source).hexdigest(), len(source))
        else:
            entries[name] = FileEntry(sha256_file(source), source.stat().st_size)
    return entries


def _info(name: str, epoch: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime(epoch)[:6])
    info.compress_type = COMPRESSION
    info.create_system = 3  # unix: the permission bits below are meaningful
    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
    return info


def write_pyz(
    out: Path, members: Mapping[str, Source], manifest: bytes, signature: bytes | None, epoch: int
) -> None:
    """Write atomically: a half-written bundle never appears under the final name."""
    last = [(MANIFEST_NAME, manifest)] + ([] if signature is None else [(SIGNATURE_NAME, signature)])
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, members, epoch, last)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pyz_bytes(members: Mapping[str, Source], epoch: int = ZIP_EPOCH) -> bytes:
    """A runnable zip in memory, reproducible like a bundle (the same bytes for the same input).

    For zips that are shipped but not kept, such as the host tool `integrator --ssh` copies
    to each host (cached there by content hash, so equal input must give equal bytes).
    """
    buf = io.BytesIO()
    _write_zip(buf, members, epoch)
    return buf.getvalue()


def _write_zip(
    fh: IO[bytes], members: Mapping[str, Source], epoch: int, last: Sequence[tuple[str, bytes]] = ()
) -> None:
    """The shebang, then `members` sorted by name, then `last` in its order, all stamped `epoch`."""
    fh.write(SHEBANG)
    with zipfile.ZipFile(fh, "w", compression=COMPRESSION, compresslevel=COMPRESSLEVEL) as zf:
        for name in sorted(members):
            _write_member(zf, _info(name, epoch), members[name])
        for name, data in last:
            _write_member(zf, _info(name, epoch), data)


def _write_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: Source) -> None:
    # writestr, not open("w"): it sets the size before writing, so no data descriptors vary
    data = source if isinstance(source, bytes) else source.read_bytes()
    zf.writestr(info, data, compresslevel=COMPRESSLEVEL)
