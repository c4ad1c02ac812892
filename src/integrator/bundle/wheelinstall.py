"""Install verified wheels into a venv without pip (HOST-SIDE, standard library only).

A wheel is a zip whose `NAME-VERSION.dist-info/RECORD` lists every member with its sha256
(PEP 427, 491). Installing one is copying: members go to site-packages, `NAME-VERSION.data/
SCHEME/...` to the venv's scripts, headers or data directories, `#!python` in a script and
each console/GUI entry point get the venv's interpreter. Nothing from a wheel is executed
or imported here, and this runs in integrator's own process: no pip, no ensurepip and no
code shipped by a bundle runs as root (pypa's `installer` does the same job, but would
have to come from the bundle or be vendored into the host code).

Every member must be listed in RECORD with a matching hash, and must land inside the
venv: a member name with `..`, an absolute path or a backslash is refused, files are
opened with O_NOFOLLOW (the venv's `bin/python` is a symlink to the system's python3),
and a parent that resolves outside the venv is refused.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BundleError
from .lockfile import canonical_name

INSTALLER = "integrator"
SCHEMES = ("purelib", "platlib", "scripts", "headers", "data")
_HASHES = ("sha256", "sha384", "sha512")
_CHUNK = 1 << 20
# `module.sub:attr.sub [extra]` (the extras select nothing to install here: --no-deps).
_ENTRY_RE = re.compile(r"(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(?:\[[\w\s,.-]*\])?")
_SCRIPT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SCRIPT = """\
#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""


@dataclass(frozen=True)
class Scheme:
    """Where a venv takes each part of a wheel (purelib and platlib are one directory in a venv)."""

    root: Path
    site: Path
    python: str  # the interpreter scripts run with (in their #! line)

    @classmethod
    def for_venv(cls, venv: Path) -> Scheme:
        sites = sorted(venv.glob("lib/python3*/site-packages"))
        if len(sites) != 1:
            raise BundleError(f"{venv}: not a venv with one lib/python3.X/site-packages")
        if re.search(r"\s", str(venv)):
            raise BundleError(f"{venv}: a venv path with white space cannot be in a #! line")
        return cls(venv, sites[0], str(venv / "bin" / "python"))

    def directory(self, scheme: str, dist: str) -> Path:
        if scheme in ("purelib", "platlib"):
            return self.site
        if scheme == "scripts":
            return self.root / "bin"
        if scheme == "headers":
            return self.root / "include" / "site" / self.site.parent.name / dist
        return self.root  # data


def check_member(name: str, wheel: str) -> None:
    """A member name that stays where it is put: relative, no `..`, no backslash, no empty part."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise BundleError(f"{wheel}: member {name!r} refused: not a plain relative path")


def place(member: str, data_dir: str) -> tuple[str, str]:
    """(scheme, path below it) for one wheel member; `root` is site-packages."""
    if not member.startswith(data_dir + "/"):
        return "root", member
    scheme, _, rest = member[len(data_dir) + 1 :].partition("/")
    if scheme not in SCHEMES or not rest:
        raise BundleError(f"{member}: unknown wheel scheme {scheme!r} (one of {', '.join(SCHEMES)})")
    return scheme, rest


def parse_record(text: str, wheel: str) -> dict[str, tuple[str, str]]:
    """RECORD rows -> {path: (algorithm, urlsafe-b64 digest)}; rows without a hash are left out."""
    rows: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != 3:
            raise BundleError(f"{wheel}: RECORD row {row!r} is not path,hash,size")
        path, digest, _ = row
        if digest:
            algorithm, sep, value = digest.partition("=")
            if not sep or algorithm not in _HASHES:
                raise BundleError(f"{wheel}: RECORD hash {digest!r} of {path} is not sha256/384/512")
            rows[path] = (algorithm, value)
    return rows


def entry_points(text: str, wheel: str) -> list[tuple[str, str, str]]:
    """(script name, module, attribute path) of every console and GUI script."""
    parser = configparser.RawConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise BundleError(f"{wheel}: entry_points.txt unreadable: {exc}") from None
    found = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            match = _ENTRY_RE.fullmatch(value.strip())
            if not _SCRIPT_NAME_RE.fullmatch(name) or match is None:
                raise BundleError(f"{wheel}: entry point {name} = {value!r} refused")
            found.append((name, match["module"], match["attr"]))
    return found


def script_text(python: str, module: str, attr: str) -> str:
    """The launcher pip and installer write for an entry point, with the venv's interpreter."""
    return _SCRIPT.format(python=python, module=module, name=attr.split(".")[0], call=attr)


def urlsafe_digest(algorithm: str, data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()


def install_wheels(venv: Path, wheels: Iterable[Path]) -> Path:
    """Install each wheel (already hash-checked against the lock) into `venv`; its site-packages."""
    scheme = Scheme.for_venv(venv)
    for wheel in wheels:
        install_wheel(wheel, scheme)
    return scheme.site


def install_wheel(path: Path, scheme: Scheme) -> None:
    """Copy one wheel's members where its scheme says, each checked against RECORD; write RECORD."""
    wheel = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{wheel}: not a wheel (not a zip file: {exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
        for info in infos:
            check_member(info.filename, wheel)
        dist_info = _dist_info(wheel, {i.filename.split("/")[0] for i in infos})
        record = parse_record(_text(zf, f"{dist_info}/RECORD", wheel), wheel)
        _check_wheel_version(_text(zf, f"{dist_info}/WHEEL", wheel), wheel)
        dist = dist_info[: -len(".dist-info")].rsplit("-", 1)[0]
        data_dir = dist_info[: -len(".dist-info")] + ".data"
        unsigned = {f"{dist_info}/RECORD", f"{dist_info}/RECORD.jws", f"{dist_info}/RECORD.p7s"}
        installed: list[tuple[Path, bytes]] = []
        for info in infos:
            if info.filename in unsigned:
                continue
            if info.filename not in record:
                raise BundleError(f"{wheel}: {info.filename} is not in its RECORD (with a hash)")
            data = zf.read(info)
            algorithm, digest = record[info.filename]
            if urlsafe_digest(algorithm, data) != digest:
                raise BundleError(f"{wheel}: {info.filename} does not match its RECORD hash")
            where, rel = place(info.filename, data_dir)
            base = scheme.site if where == "root" else scheme.directory(where, dist)
            if where == "scripts":
                data = fix_shebang(data, scheme.python)
            executable = where == "scripts" or bool((info.external_attr >> 16) & 0o111)
            installed.append((_write(scheme.root, base / rel, data, executable), data))
        if f"{dist_info}/entry_points.txt" in record:
            text = _text(zf, f"{dist_info}/entry_points.txt", wheel)
            for name, module, attr in entry_points(text, wheel):
                data = script_text(scheme.python, module, attr).encode()
                installed.append((_write(scheme.root, scheme.root / "bin" / name, data, True), data))
    meta = scheme.site / dist_info
    marker = f"{INSTALLER}\n".encode()
    installed.append((_write(scheme.root, meta / "INSTALLER", marker, False), marker))
    record_text = _record_text(scheme.site, meta / "RECORD", installed)
    _write(scheme.root, meta / "RECORD", record_text.encode(), False)


def _text(zf: zipfile.ZipFile, name: str, wheel: str) -> str:
    try:
        return zf.read(name).decode("utf-8")
    except KeyError:
        raise BundleError(f"{wheel}: has no {name}") from None
    except UnicodeDecodeError:
        raise BundleError(f"{wheel}: {name} is not UTF-8") from None


def fix_shebang(data: bytes, python: str) -> bytes:
    """`#!python` (or `#!pythonw`) at the top of a wheel's script -> the venv's interpreter."""
    match = re.match(rb"#!pythonw?(?=\s|$)", data)
    return data if match is None else b"#!" + python.encode() + data[match.end() :]


def _dist_info(wheel: str, tops: set[str]) -> str:
    """The one top-level NAME-VERSION.dist-info of the wheel file named `wheel`."""
    name = canonical_name(wheel.split("-")[0])
    suffix = ".dist-info"
    found = [
        top
        for top in tops
        if top.endswith(suffix) and canonical_name(top[: -len(suffix)].rsplit("-", 1)[0]) == name
    ]
    if len(found) != 1:
        raise BundleError(f"{wheel}: not one {name}-VERSION.dist-info directory at its top")
    return found[0]


def _check_wheel_version(text: str, wheel: str) -> None:
    version = re.search(r"^Wheel-Version:\s*(\d+)\.", text, re.M)
    if version is None or version.group(1) != "1":
        raise BundleError(f"{wheel}: Wheel-Version 1.x required")


def _write(root: Path, target: Path, data: bytes, executable: bool) -> Path:
    """Write a new file below `root`, never through a symlink, world-readable whatever the umask."""
    parent = target.parent
    try:
        _makedirs(parent)
    except OSError as exc:  # a file where a directory should be
        raise BundleError(f"{parent}: refused to create it: {exc.strerror}") from None
    real, top = os.path.realpath(parent), os.path.realpath(root)
    if real != top and not real.startswith(top + os.sep):
        raise BundleError(f"{target}: would be written outside {root}")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # ELOOP: a symlink there (bin/python), EISDIR, ...
        raise BundleError(f"{target}: refused to write it: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        os.fchmod(fh.fileno(), 0o755 if executable else 0o644)
    return target


def _makedirs(path: Path) -> None:
    """mkdir -p with 0755 directories (mkdir alone is cut by root's umask: 027 on hardened hosts)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
        directory.chmod(0o755)


def _record_text(site: Path, record: Path, installed: list[tuple[Path, bytes]]) -> str:
    """RECORD of what was installed, paths relative to site-packages (as pip writes it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for path, data in installed:
        rel = os.path.relpath(path, site)
        writer.writerow([rel, f"sha256={urlsafe_digest('sha256', data)}", len(data)])
    writer.writerow([os.path.relpath(record, site), "", ""])
    return out.getvalue()
