"""The host's own wheel installer (bundle/wheelinstall.py): tables for its pure parts, real venvs
for the rest, and pypa's `installer` as the oracle for what a wheel installs where."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from integrator.bundle import venv, wheelinstall
from integrator.errors import BundleError

PY = "/v/bin/python"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    path: Path,
    name: str,
    files: dict[str, bytes],
    *,
    entry_points: str = "",
    record: dict[str, str] | None = None,
    unrecorded: tuple[str, ...] = (),
) -> Path:
    """A real wheel at `path`/NAME-1.0-py3-none-any.whl with a correct RECORD, unless `record`
    overrides hashes or `unrecorded` members are left out of it."""
    dist_info = f"{name}-1.0.dist-info"
    members = dict(files)
    members[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
    members[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if entry_points:
        members[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for member, data in members.items():
        if member not in unrecorded:
            writer.writerow([member, (record or {}).get(member, record_hash(data)), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    members[f"{dist_info}/RECORD"] = out.getvalue().encode()
    wheel = path / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if member.endswith(".sh") else 0o644) << 16
            zf.writestr(info, data)
    return wheel


def bare_venv(path: Path) -> Path:
    subprocess.run(venv.venv_command(sys.executable, path), check=True, capture_output=True)
    return path


FULL = {
    "full/__init__.py": b"VALUE = 42\n",
    "full/tool.sh": b"#!/bin/sh\necho hi\n",
    "full-1.0.data/scripts/full-script": b"#!python\nimport full\nprint(full.VALUE)\n",
    "full-1.0.data/scripts/plain": b"#!/bin/sh\necho plain\n",
    "full-1.0.data/platlib/full_native.py": b"NATIVE = 1\n",
    "full-1.0.data/headers/full.h": b"int full;\n",
    "full-1.0.data/data/share/full/README": b"data\n",
}
FULL_ENTRY_POINTS = (
    "[console_scripts]\nfull-cli = full:VALUE.bit_length\n[gui_scripts]\nfull-gui = full.x:main\n"
)


# --- pure parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("pkg/mod.py", ("root", "pkg/mod.py")),
        ("pkg-1.0.dist-info/METADATA", ("root", "pkg-1.0.dist-info/METADATA")),
        ("pkg-1.0.data/scripts/run", ("scripts", "run")),
        ("pkg-1.0.data/purelib/a/b.py", ("purelib", "a/b.py")),
        ("pkg-1.0.data/platlib/c.so", ("platlib", "c.so")),
        ("pkg-1.0.data/headers/x.h", ("headers", "x.h")),
        ("pkg-1.0.data/data/share/x", ("data", "share/x")),
    ],
)
def test_each_member_goes_to_its_scheme(member: str, expected: tuple[str, str]) -> None:
    assert wheelinstall.place(member, "pkg-1.0.data") == expected


@pytest.mark.parametrize("member", ["pkg-1.0.data/bin/run", "pkg-1.0.data/scripts"])
def test_an_unknown_scheme_is_refused(member: str) -> None:
    with pytest.raises(BundleError, match="unknown wheel scheme"):
        wheelinstall.place(member, "pkg-1.0.data")


@pytest.mark.parametrize("member", ["/etc/passwd", "../x", "a/../../x", "a\\..\\x", "a//b", "./a", "a/\0"])
def test_member_names_that_could_escape_are_refused(member: str) -> None:
    with pytest.raises(BundleError, match="not a plain relative path"):
        wheelinstall.check_member(member, "w.whl")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[console_scripts]\ngunicorn = gunicorn.app.wsgiapp:run\n",
            [("gunicorn", "gunicorn.app.wsgiapp", "run")],
        ),
        (
            "[console_scripts]\nx = m:a.b [extra]\n[gui_scripts]\ny=n:c\n",
            [("x", "m", "a.b"), ("y", "n", "c")],
        ),
        ("[other]\nx = m:a\n", []),
    ],
)
def test_entry_points(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert wheelinstall.entry_points(text, "w.whl") == expected


@pytest.mark.parametrize(
    "line", ["../evil = m:a", "x = m:a; import os", "x = m", "x = m:a\n  os.system('id')"]
)
def test_entry_points_that_are_not_plain_names_are_refused(line: str) -> None:
    with pytest.raises(BundleError, match="refused"):
        wheelinstall.entry_points(f"[console_scripts]\n{line}\n", "w.whl")


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (b"#!python\nx\n", b"#!/v/bin/python\nx\n"),
        (b"#!pythonw -u\nx\n", b"#!/v/bin/python -u\nx\n"),
        (b"#!python", b"#!/v/bin/python"),
        (b"#!/bin/sh\nx\n", b"#!/bin/sh\nx\n"),
        (b"#!python3\nx\n", b"#!python3\nx\n"),  # only `python` exactly is the wheel's placeholder
    ],
)
def test_only_the_python_placeholder_is_rewritten(script: bytes, expected: bytes) -> None:
    assert wheelinstall.fix_shebang(script, PY) == expected


def test_the_host_venv_build_runs_no_pip_and_no_site(tmp_path: Path) -> None:
    assert venv.venv_command("/usr/bin/python3", tmp_path) == [
        "/usr/bin/python3", "-m", "venv", "--without-pip", str(tmp_path)
    ]  # fmt: skip
    argv = venv.compile_command("/usr/bin/python3", tmp_path)
    assert argv[:5] == ["/usr/bin/python3", "-I", "-S", "-m", "compileall"]  # no .pth of a wheel runs
    env = venv.clean_env(
        {"PATH": "/usr/bin", "PIP_INDEX_URL": "http://evil", "PYTHONPATH": "/x", "HOME": "/r"}
    )
    assert env == {"PATH": "/usr/bin", "HOME": "/r"}


# --- real installs ---------------------------------------------------------------------------------


def test_a_wheel_installs_every_scheme_and_its_scripts_run(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "full", FULL, entry_points=FULL_ENTRY_POINTS)
    env = bare_venv(tmp_path / "venv")
    site = wheelinstall.install_wheels(env, [wheel])
    assert (site / "full/__init__.py").read_bytes() == b"VALUE = 42\n"
    assert (site / "full_native.py").exists()
    assert (env / "include/site" / site.parent.name / "full/full.h").exists()
    assert (env / "share/full/README").read_text() == "data\n"
    script = env / "bin/full-script"
    assert script.read_bytes().startswith(f"#!{env}/bin/python\n".encode())
    assert (script.stat().st_mode & 0o777) == 0o755 and (
        (site / "full/tool.sh").stat().st_mode & 0o777
    ) == 0o755
    assert ((site / "full/__init__.py").stat().st_mode & 0o777) == 0o644
    assert subprocess.run([script], capture_output=True, text=True, check=True).stdout == "42\n"
    cli = subprocess.run([env / "bin/full-cli"], capture_output=True, check=False)
    assert cli.returncode == 6  # sys.exit((42).bit_length())
    assert (env / "bin/full-gui").read_text().startswith(f"#!{env}/bin/python\n")
    dist_info = site / "full-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "integrator\n"
    rows = {row[0]: row for row in csv.reader(io.StringIO((dist_info / "RECORD").read_text()))}
    assert rows["../../../bin/full-cli"][1] == record_hash((env / "bin/full-cli").read_bytes())
    assert rows["full/__init__.py"][1] == record_hash(b"VALUE = 42\n")
    assert not list(env.glob("lib/*/site-packages/pip"))


@pytest.mark.parametrize(
    ("files", "kwargs", "message"),
    [
        ({"a/x.py": b"1"}, {"record": {"a/x.py": record_hash(b"2")}}, "does not match its RECORD hash"),
        ({"a/x.py": b"1"}, {"unrecorded": ("a/x.py",)}, "is not in its RECORD"),
        ({"a/x.py": b"1"}, {"record": {"a/x.py": "md5=abc"}}, "is not sha256/384/512"),
        ({"../escape.py": b"1"}, {}, "not a plain relative path"),
        ({"a-1.0.data/scripts/python": b"#!python\n"}, {}, "refused to write it"),  # bin/python: a symlink
        ({"a-1.0.data/data/bin/python/x": b"1"}, {}, "would be written outside"),
    ],
)
def test_a_wheel_that_does_not_match_its_record_or_escapes_is_refused(
    tmp_path: Path, files: dict[str, bytes], kwargs: dict[str, object], message: str
) -> None:
    wheel = make_wheel(tmp_path, "a", files, **kwargs)  # type: ignore[arg-type]
    env = bare_venv(tmp_path / "venv")
    python = (env / "bin/python").resolve()
    before = python.read_bytes()
    with pytest.raises(BundleError, match=message):
        wheelinstall.install_wheels(env, [wheel])
    assert python.read_bytes() == before and not (tmp_path / "escape.py").exists()


def test_an_sdist_or_a_zip_without_dist_info_is_not_a_wheel(tmp_path: Path) -> None:
    env = bare_venv(tmp_path / "venv")
    sdist = tmp_path / "evil-1.0-py3-none-any.whl"
    sdist.write_bytes(b"\x1f\x8b not a zip")
    with pytest.raises(BundleError, match="not a wheel"):
        wheelinstall.install_wheels(env, [sdist])
    with zipfile.ZipFile(sdist, "w") as zf:
        zf.writestr("evil-1.0/setup.py", "raise SystemExit")
    with pytest.raises(BundleError, match="dist-info"):
        wheelinstall.install_wheels(env, [sdist])


def test_pypa_installer_puts_every_file_where_we_do(tmp_path: Path) -> None:
    """The oracle: pypa's `installer` (a dev dependency) installs the same wheel into another
    venv; the same files land at the same places with the same bytes (scripts: same #! line)."""
    installer = pytest.importorskip("installer")
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    wheel = make_wheel(tmp_path, "full", FULL, entry_points=FULL_ENTRY_POINTS)
    ours, theirs = bare_venv(tmp_path / "ours"), bare_venv(tmp_path / "theirs")
    wheelinstall.install_wheels(ours, [wheel])
    site = next(theirs.glob("lib/python3*/site-packages"))
    scheme = {"purelib": site, "platlib": site, "scripts": theirs / "bin", "data": theirs,
              "headers": theirs / "include/site" / site.parent.name / "full"}  # fmt: skip
    destination = SchemeDictionaryDestination(
        {k: str(v) for k, v in scheme.items()}, interpreter=f"{theirs}/bin/python", script_kind="posix"
    )
    with WheelFile.open(wheel) as source:
        installer.install(source, destination, {})

    def tree(root: Path) -> dict[str, bytes]:
        skip = ("RECORD", "INSTALLER", "pyvenv.cfg")
        files = {}
        for path in root.rglob("*"):
            if (
                path.is_file()
                and not path.is_symlink()
                and path.name not in skip
                and "activate" not in path.name
            ):
                files[str(path.relative_to(root))] = path.read_bytes().replace(str(root).encode(), b"VENV")
        return files

    mine, oracle = tree(ours), tree(theirs)
    assert sorted(mine) == sorted(oracle)
    for rel in mine:
        if not rel.startswith("bin/full-") or rel == "bin/full-script":
            assert mine[rel] == oracle[rel], rel
        assert mine[rel].split(b"\n")[0] == oracle[rel].split(b"\n")[0], rel
