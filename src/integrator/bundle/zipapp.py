"""Write the .pyz: a reproducible zip of the host-side code and the payload, behind a shebang.

Reproducible means two builds of the same inputs are byte-identical, so the sha256 people
compare after a transfer also proves what was built: entries sorted, one timestamp (the
source time), fixed permissions, no directory entries, one compression setting, and the
manifest (then its signature) last.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Union

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
from .wheels import Wheelhouse

# What runs on the host, relative to the `integrator` package. Directories are taken whole
# (every file but bytecode), so modules added to them later ship without editing this.
# Each of these may import only the standard library and each other: a test enforces it.
HOST_SIDE = (
    "__init__.py",
    "errors.py",
    "result.py",
    "spec.py",
    "layout.py",
    "render",
    "host",
    "bundle/__init__.py",
    "bundle/manifest.py",
    "bundle/venv.py",
    "bundle/sign.py",
    "bundle/verify.py",
    "bundle/pyzmain.py",
)
PACKAGE = "integrator"

MAIN_PY = b'''\
"""Run an integrator bundle: python3 BUNDLE.pyz --help"""
import sys

if sys.version_info < (3, 9):
    sys.exit("integrator bundles need Python >= 3.9, this is " + sys.version.split()[0])

from integrator.bundle.pyzmain import main

sys.exit(main())
'''

COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESSLEVEL = 6
FILE_MODE = 0o644

Source = Union[bytes, Path]


def package_dir() -> Path:
    """The installed `integrator` package whose host-side code goes into the bundle."""
    return Path(__file__).resolve().parent.parent


def host_code(package: Path) -> dict[str, Path]:
    """Member name -> source file for HOST_SIDE; a missing listed file is a broken install."""
    members: dict[str, Path] = {}
    for entry in HOST_SIDE:
        path = package / entry
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo"):
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(SHEBANG)
            with zipfile.ZipFile(fh, "w", compression=COMPRESSION, compresslevel=COMPRESSLEVEL) as zf:
                for name in sorted(members):
                    _write_member(zf, _info(name, epoch), members[name])
                zf.writestr(_info(MANIFEST_NAME, epoch), manifest, compresslevel=COMPRESSLEVEL)
                if signature is not None:
                    zf.writestr(_info(SIGNATURE_NAME, epoch), signature, compresslevel=COMPRESSLEVEL)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: Source) -> None:
    # writestr, not open("w"): it sets the size before writing, so no data descriptors vary
    data = source if isinstance(source, bytes) else source.read_bytes()
    zf.writestr(info, data, compresslevel=COMPRESSLEVEL)
