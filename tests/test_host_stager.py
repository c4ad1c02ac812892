"""What runs as root on a remote host is what the operator sent: the stager, run for real here (root).

`host/stager.py` is run exactly as a remote host runs it (`python3 -I -c SOURCE PLAN`, uploads on
stdin, argv built by `host/remote.py`), as root on this machine, with its root directory in a
fresh 0700 directory under /run instead of /var/cache. The "tools" it runs are small zipapps that
report what they saw; a planted one touches a marker file, which must never appear.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import pytest

from integrator.host.stager import TOOL_MISSING
from integrator.targets.remote import Arg, Upload, stage_plan, stager_argv, stdin_parts, tool_name
from integrator.targets.transport import RemoteTarget, host_tool

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="the stager's checks need root")]

REPORT_MAIN = """\
import json, os, stat, sys
staged = [a.split("=", 1)[-1] for a in sys.argv[1:] if "/staging/" in a]
info = {p: {"mode": stat.S_IMODE(os.stat(p).st_mode), "data": open(p).read()} for p in staged}
dirs = {os.path.dirname(p): stat.S_IMODE(os.stat(os.path.dirname(p)).st_mode) for p in staged}
print(json.dumps({"ok": True, "exit_code": 0, "argv": sys.argv[1:], "files": info, "dirs": dirs,
                  "tool": sys.argv[0]}))
sys.exit(int(os.environ.get("REPORT_EXIT", "0")))
"""


def pyz(main: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("__main__.py", main)
    return buf.getvalue()


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory whose whole chain is root's alone (/run is root 0755), as /var/cache is on a host."""
    path = Path(tempfile.mkdtemp(dir="/run", prefix="integrator-stager-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def marker(base: Path) -> Path:
    return base / "PLANTED-CODE-RAN"


def evil_tool(marker: Path) -> bytes:
    return pyz(f"open({str(marker)!r}, 'w').write('ran as root')\n")


def stage_run(
    root: Path,
    tool: bytes,
    send_tool: bool,
    uploads: dict[str, bytes] | None = None,
    argv: Sequence[Arg] | None = None,
    sent: dict[str, bytes] | None = None,
) -> tuple[int, dict[str, object]]:
    """Run the stager as a host would; `sent` replaces what actually goes over stdin."""
    files: list[Upload] = []
    tmp = Path(tempfile.mkdtemp())
    try:
        for name, data in (uploads or {}).items():
            (tmp / name).write_bytes(data)
            files.append(Upload.of(name, tmp / name))
        for name, data in (sent or {}).items():
            (tmp / name).write_bytes(data)
        digest = hashlib.sha256(tool).hexdigest()
        plan = stage_plan(
            digest, len(tool), send_tool, files, argv or ["--json", "status"], PurePosixPath(root)
        )
        stdin = b"".join(stdin_parts(tool if send_tool else None, files))
        proc = subprocess.run(stager_argv(plan), input=stdin, capture_output=True, check=False, timeout=60)
    finally:
        shutil.rmtree(tmp)
    assert proc.stdout.count(b"\n") == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(proc.stdout)


# --- the tool: checked, cached, verified ----------------------------------------------------------


def test_a_missing_tool_is_asked_for_then_cached_and_run(base: Path) -> None:
    root, tool = base / "integrator-host", pyz(REPORT_MAIN)
    code, answer = stage_run(root, tool, send_tool=False)
    assert (code, answer["tool_missing"]) == (TOOL_MISSING, True)
    code, answer = stage_run(root, tool, send_tool=True, argv=["--json", "status", "--local"])
    assert code == 0 and answer["argv"] == ["--json", "status", "--local"]
    cached = root / "tool" / tool_name(hashlib.sha256(tool).hexdigest())
    assert cached.read_bytes() == tool
    for path in (root, root / "tool", root / "staging"):
        st = path.lstat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700), path
    code, answer = stage_run(root, tool, send_tool=False)  # now from the cache
    assert code == 0 and str(answer["tool"]).startswith(str(root / "staging" / "run-"))
    assert list((root / "staging").iterdir()) == []


def test_a_changed_or_linked_cached_tool_never_runs(base: Path, marker: Path) -> None:
    root, tool = base / "integrator-host", pyz(REPORT_MAIN)
    assert stage_run(root, tool, send_tool=True)[0] == 0
    cached = root / "tool" / tool_name(hashlib.sha256(tool).hexdigest())
    cached.write_bytes(evil_tool(marker))  # what a planted file would hold
    assert stage_run(root, tool, send_tool=False)[0] == TOOL_MISSING
    cached.unlink()
    (base / "elsewhere.pyz").write_bytes(tool)
    cached.symlink_to(base / "elsewhere.pyz")
    assert stage_run(root, tool, send_tool=False)[0] == TOOL_MISSING
    assert stage_run(root, tool, send_tool=True)[0] == 0  # replaced by the verified copy
    assert not cached.is_symlink() and cached.read_bytes() == tool
    assert not marker.exists()


def test_a_tool_damaged_in_transit_is_refused(base: Path, marker: Path) -> None:
    root, tool = base / "integrator-host", pyz(REPORT_MAIN)
    evil = evil_tool(marker)
    digest = hashlib.sha256(tool).hexdigest()
    plan = stage_plan(digest, len(evil), True, [], ["x"], PurePosixPath(root))
    proc = subprocess.run(stager_argv(plan), input=evil, capture_output=True, check=False)
    assert proc.returncode == 1 and f"not {digest}" in json.loads(proc.stdout)["error"]
    assert not marker.exists() and not any((root / "tool").iterdir())


HOSTILE = {
    "owned by someone else": lambda root: os.chown(root, 65534, 65534),
    "group-writable": lambda root: root.chmod(0o770),
    "readable by others": lambda root: root.chmod(0o755),
    "tool dir owned by someone else": lambda root: os.chown(root / "tool", 65534, 65534),
    "staging dir world-writable": lambda root: (root / "staging").chmod(0o1777),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_directory_that_is_not_roots_alone_is_refused_and_nothing_runs(
    base: Path, marker: Path, case: str
) -> None:
    root, tool = base / "integrator-host", pyz(REPORT_MAIN)
    for sub in ("tool", "staging"):
        (root / sub).mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    (root / "tool" / tool_name(hashlib.sha256(tool).hexdigest())).write_bytes(evil_tool(marker))
    HOSTILE[case](root)
    code, answer = stage_run(root, tool, send_tool=True)
    error = str(answer["error"])
    assert code == 1 and error.startswith(f"refusing to run as root from {root}: "), error
    assert f"rm -rf {root}), then retry" in error and "\n" not in error
    assert not marker.exists()


def test_a_symlinked_root_is_refused(base: Path, marker: Path) -> None:
    planted = base / "planted"
    (planted / "tool").mkdir(parents=True)
    os.chown(planted, 65534, 65534)
    (base / "integrator-host").symlink_to(planted)
    code, answer = stage_run(base / "integrator-host", pyz(REPORT_MAIN), send_tool=True)
    assert code == 1 and f"{base}/integrator-host is a symbolic link" in str(answer["error"])
    assert not marker.exists()


def test_a_world_writable_ancestor_is_refused(base: Path) -> None:
    (base / "shared").mkdir(mode=0o777)
    (base / "shared").chmod(0o1777)  # like /tmp and /var/tmp
    root = base / "shared" / "integrator-host"
    code, answer = stage_run(root, pyz(REPORT_MAIN), send_tool=True)
    assert code == 1 and str(answer["error"]) == (
        f"refusing to run as root from {root}: {base}/shared has mode 1777: writable by others than root; "
        f"make {base}/shared a directory owned by root and writable by root alone, then retry"
    )
    assert not root.exists()


# --- uploads: private, verified, removed ----------------------------------------------------------


def test_uploads_are_private_verified_and_always_removed(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, tool = base / "integrator-host", pyz(REPORT_MAIN)
    uploads = {"shop.pyz": b"the bundle", "secret-1": b"hunter2"}
    argv: list[Arg] = ["deploy", ("", "shop.pyz"), "--secret", ("db=", "secret-1")]
    code, answer = stage_run(root, tool, True, uploads, argv)
    assert code == 0, answer
    files = answer["files"]
    assert isinstance(files, dict) and sorted(v["data"] for v in files.values()) == ["hunter2", "the bundle"]
    dirs, ran = answer["dirs"], answer["argv"]
    assert isinstance(dirs, dict) and isinstance(ran, list)
    assert {v["mode"] for v in files.values()} == {0o600} and set(dirs.values()) == {0o700}
    assert ran[3].startswith("db=" + str(root / "staging" / "run-"))
    assert list((root / "staging").iterdir()) == []
    monkeypatch.setenv("REPORT_EXIT", "1")  # the tool fails: the staging still goes
    assert stage_run(root, tool, True, uploads, argv)[0] == 1
    assert list((root / "staging").iterdir()) == []


def test_an_upload_that_is_not_what_was_hashed_is_refused(base: Path, marker: Path) -> None:
    root = base / "integrator-host"
    code, answer = stage_run(
        root,
        evil_tool(marker),
        True,
        {"shop.pyz": b"signed bytes"},
        ["x"],
        sent={"shop.pyz": b"swapped byte"},
    )
    assert code == 1 and str(answer["error"]).startswith("upload shop.pyz arrived with sha256 ")
    assert not marker.exists() and list((root / "staging").iterdir()) == []


def test_a_short_upload_is_refused(base: Path, marker: Path) -> None:
    root = base / "integrator-host"
    code, answer = stage_run(
        root, evil_tool(marker), True, {"shop.pyz": b"all of it"}, sent={"shop.pyz": b"all"}
    )
    assert code == 1 and str(answer["error"]) == "the upload ended 6 bytes early (connection lost?)"
    assert not marker.exists() and list((root / "staging").iterdir()) == []


# --- through a target: one connection per verb ----------------------------------------------------


class HereTarget(RemoteTarget):
    """A "remote" host that is this machine: the real stager and host tool, run here as root."""

    def __init__(self, root: Path) -> None:
        self.remote_root = PurePosixPath(root)
        self.connections = 0

    def describe(self) -> str:
        return "here"

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def exchange(
        self, argv: Sequence[str], parts: Iterator[bytes], timeout: float
    ) -> subprocess.CompletedProcess[bytes]:
        self.connections += 1
        return super().exchange(argv, parts, timeout)


def test_a_verb_takes_one_connection_once_the_tool_is_cached(base: Path) -> None:
    target = HereTarget(base / "integrator-host")
    first = target.invoke(["list"])
    assert target.connections == 2  # asked, then sent the tool
    assert target.invoke(["list"]).data == first.data and target.connections == 3
    assert [p.name for p in (base / "integrator-host" / "tool").iterdir()] == [tool_name(host_tool()[1])]


def test_other_versions_of_the_tool_go_after_a_month(base: Path) -> None:
    root = base / "integrator-host"
    old, recent, tool = pyz("print(1)"), pyz("print(2)"), pyz(REPORT_MAIN)
    for version in (old, recent):
        assert stage_run(root, version, send_tool=True)[0] == 0
    old_path = root / "tool" / tool_name(hashlib.sha256(old).hexdigest())
    os.utime(old_path, (0, time.time() - 31 * 86400))
    assert stage_run(root, tool, send_tool=True)[0] == 0
    names = sorted(p.name for p in (root / "tool").iterdir())
    assert names == sorted(tool_name(hashlib.sha256(t).hexdigest()) for t in (recent, tool))
