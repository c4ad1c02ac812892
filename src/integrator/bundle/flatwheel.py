"""The app wheel of a flat project (no pyproject.toml build, no setup.py), written here.

It holds exactly the files the project model ships (project/model.py), each at its path
relative to the project: installed, `wsgi.py` and the `config.json` beside it land side by
side in the venv's site-packages, so code that reads files relative to `__file__` finds them.
No build backend runs (nothing of the project is executed to package it), and the zip is
reproducible: sorted entries, one timestamp, fixed permissions.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import time
import zipfile
from pathlib import Path

from .. import __version__
from ..errors import BundleError
from ..project.model import Project
from ..spec import ServiceSpec

REQUIRES_PYTHON = ">=3.9"  # the oldest target integrator deploys to


def wheel_name(spec: ServiceSpec) -> str:
    """PEP 427 file name: `{distribution}-{version}-py3-none-any.whl`, distribution with `_`."""
    return f"{re.sub(r'[-_.]+', '_', spec.name)}-{spec.version}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_members(project: Project, spec: ServiceSpec) -> dict[str, bytes]:
    """Every member of the wheel, by name: the shipped files, then its .dist-info."""
    if not project.module_files():
        raise BundleError(
            f"{project.root}: no pyproject.toml, setup.py or top-level Python module to package"
        )
    members = {rel.as_posix(): (project.import_root / rel).read_bytes() for rel in project.shipped}
    info = f"{wheel_name(spec).split('-')[0]}-{spec.version}.dist-info"
    members[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {spec.name}\nVersion: {spec.version}\n"
        f"Summary: {spec.service.description}\nRequires-Python: {REQUIRES_PYTHON}\n"
    ).encode()
    members[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: integrator {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    ).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in members.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    members[f"{info}/RECORD"] = record.getvalue().encode()
    return members


def write_flat_wheel(project: Project, spec: ServiceSpec, out: Path, epoch: int) -> Path:
    """OUT/NAME-VERSION-py3-none-any.whl of the flat project; byte-identical for the same inputs."""
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / wheel_name(spec)
    stamp = time.gmtime(epoch)[:6]
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in wheel_members(project, spec).items():
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return wheel
