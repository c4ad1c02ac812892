"""integrator.sandbox: fast unit tests (no root) and real-host tests (marked `sandbox`).

The real-host tests share hosts within a test: a boot takes ~1 s, a reboot ~0.5 s.
"""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest

from integrator.errors import EnvironmentProblem, HostError, UsageError
from integrator.sandbox import Sandbox, create, destroy, get, list_sandboxes
from integrator.sandbox.cgroups import hierarchies, host_cgroups
from integrator.sandbox.commands import copy_cmd, destroy_cmd, split_remote
from integrator.sandbox.mirrors import apt_lines, find_mirrors, parse_sources
from integrator.sandbox.mounts import mount_points, mounts_under
from integrator.sandbox.net import link_exists
from integrator.sandbox.paths import host_paths, validate_name
from integrator.sandbox.procs import inside_argv, supervisor_pid
from integrator.sandbox.rootfs import PACKAGES, cache_key, customize, parse_keyfile
from tests.sandbox_fixture import MakeSandbox

# --- unit tests: no root, no hosts ------------------------------------------------------

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize("name", ["h1", "a", "web-01", "abcdefghijk", "0x"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-h", "H1", "a_b", "abcdefghijkl", "a/b", "..", "a b", "é"])
def test_invalid_names_are_usage_errors(name: str) -> None:
    with pytest.raises(UsageError, match="bad sandbox name"):
        host_paths(name)


def test_parse_deb822_ignores_comments() -> None:
    assert parse_sources(DEB822) == ["http://deb.debian.org/debian", "http://deb.debian.org/debian-security"]


def test_parse_one_line_and_continued_fields() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "\nTypes: deb\nURIs: http://a.example/debian\n  http://b.example/debian-security\nSuites: x\n"
    )
    assert parse_sources(text) == [
        "http://mirror.example/debian/",
        "http://a.example/debian",
        "http://b.example/debian-security",
    ]


def test_find_mirrors_from_a_sources_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTEGRATOR_SANDBOX_MIRROR", raising=False)
    monkeypatch.delenv("INTEGRATOR_SANDBOX_SECURITY_MIRROR", raising=False)
    (tmp_path / "debian.sources").write_text(DEB822)
    (tmp_path / "ignored.list.disabled").write_text("deb http://other.example/debian bookworm main\n")
    assert find_mirrors([tmp_path / "missing.list", tmp_path]) == (
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
    )
    assert apt_lines("bookworm", "http://m/debian", "http://m/debian-security")[1] == (
        "deb http://m/debian bookworm-updates main"
    )


def test_missing_security_mirror_names_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTEGRATOR_SANDBOX_SECURITY_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text("deb http://deb.debian.org/debian bookworm main\n")
    with pytest.raises(EnvironmentProblem, match="INTEGRATOR_SANDBOX_SECURITY_MIRROR"):
        find_mirrors([tmp_path / "sources.list"])
    monkeypatch.setenv("INTEGRATOR_SANDBOX_SECURITY_MIRROR", "http://sec.example/debian-security")
    assert find_mirrors([tmp_path / "sources.list"])[1] == "http://sec.example/debian-security"


def test_cache_key_changes_exactly_with_its_inputs() -> None:
    key = cache_key()
    assert len(key) == 64 and key == cache_key("bookworm", tuple(reversed(PACKAGES)))
    assert key == cache_key(packages=(*PACKAGES, PACKAGES[0]))  # duplicates do not matter
    assert key != cache_key("trixie")
    assert key != cache_key(packages=(*PACKAGES, "vim"))
    assert key != cache_key(customize_version=999)


def test_keyfile_holds_key_and_build_id() -> None:
    assert parse_keyfile("abc\nabc-17\n") == ("abc", "abc-17")
    assert parse_keyfile(None) == (None, None)
    assert parse_keyfile("abc\n") == (None, None)  # old format: rebuilt once


def test_customize_makes_hosts_unique(tmp_path: Path) -> None:
    for d in ("etc/ssh", "var/lib/dbus", "etc/systemd/system"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef\n")
    (tmp_path / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    customize(tmp_path)
    assert not list((tmp_path / "etc/ssh").glob("ssh_host_*"))
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert not (tmp_path / "var/lib/dbus/machine-id").is_symlink()
    assert os.readlink(tmp_path / "etc/systemd/system/apt-daily.timer") == "/dev/null"
    dropin = tmp_path / "etc/systemd/system/ssh.service.d/integrator-keygen.conf"
    assert "ssh-keygen -A" in dropin.read_text()


def test_cgroup_hierarchies(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified/cgroup.procs").write_text("")
    (tmp_path / "systemd").mkdir()
    (tmp_path / "systemd/cgroup.procs").write_text("")
    assert hierarchies(tmp_path) == [tmp_path / "unified", tmp_path / "systemd"]
    (tmp_path / "cgroup.controllers").write_text("cpu memory")
    assert hierarchies(tmp_path) == [tmp_path]


def test_mount_points_decode_escapes() -> None:
    info = "36 35 98:0 / /var/lib/x\\040y rw,noatime master:1 - overlay overlay rw\n"
    assert mount_points(info) == ["/var/lib/x y"]


def test_inside_argv_has_clean_env_and_root_cwd() -> None:
    argv = inside_argv(42, ["systemctl", "status"], {"FOO": "1"})
    assert argv[:7] == ["nsenter", "-t", "42", "-a", "-r", "-w", "/usr/bin/env"]
    assert argv[7:10] == ["-i", "-C", "/root"] and "FOO=1" in argv and argv[-2:] == ["systemctl", "status"]


def test_copy_needs_exactly_one_remote_side() -> None:
    assert split_remote("h1:/root/x") == ("h1", "/root/x")
    assert split_remote("./h1:/x") == (None, "./h1:/x")
    for src, dest in (("a", "b"), ("h1:/a", "h2:/b")):
        with pytest.raises(UsageError, match="exactly one side"):
            copy_cmd(src, dest)


def test_destroy_needs_a_name_or_all() -> None:
    with pytest.raises(UsageError):
        destroy_cmd(None)
    with pytest.raises(UsageError):
        destroy_cmd("h1", all_hosts=True)


# --- real hosts ------------------------------------------------------------------------


def http_status(address: str) -> int:
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        return int(response.status)


def leftovers(name: str) -> list[str]:
    """Everything of host `name` that destroy must have removed."""
    paths = host_paths(name)
    found = [
        f"process {p.name}"
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _cmdline_has(p, f"{paths.root}\0")
    ]
    found += [f"mount {m}" for m in mounts_under(paths.dir)]
    found += [f"link ve-{name}"] if link_exists(name) else []
    found += [f"cgroup {c}" for c in host_cgroups(name) if c.exists()]
    found += [f"dir {paths.dir}"] if paths.dir.exists() else []
    return found


def _cmdline_has(proc: Path, needle: str) -> bool:
    try:
        return needle.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.sandbox
def test_host_runs_serves_copies_and_survives_reboot(sandbox_host: Sandbox, tmp_path: Path) -> None:
    h = sandbox_host
    assert h.state() in ("running", "degraded")
    assert http_status(h.address) == 200
    assert (
        b"200"
        in h.netns_run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1/"]).stdout
    )
    assert h.exec(["journalctl", "-b", "--no-pager", "-u", "nginx"]).stdout
    assert h.exec(["cat"], input=b"piped").stdout == b"piped"
    assert h.exec(["sh", "-c", 'echo "$PWD $GREETING"'], env={"GREETING": "hi"}).stdout == b"/root hi\n"
    with pytest.raises(HostError, match="nope"):
        h.exec(["sh", "-c", "echo nope >&2; exit 3"])
    with pytest.raises(UsageError, match="already exists"):
        create(h.name)

    (tmp_path / "tree/sub").mkdir(parents=True)
    (tmp_path / "tree/sub/file.txt").write_text("payload\n")
    h.copy_in(tmp_path / "tree", "/opt/copied")
    assert h.exec(["stat", "-c", "%U", "/opt/copied/sub/file.txt"]).stdout == b"root\n"
    h.copy_out("/opt/copied", tmp_path / "back")
    assert (tmp_path / "back/sub/file.txt").read_text() == "payload\n"

    leader = h.leader()
    h.reboot()
    assert h.leader() != leader
    assert h.exec(["cat", "/opt/copied/sub/file.txt"]).stdout == b"payload\n"
    assert h.state() in ("running", "degraded")
    assert http_status(h.address) == 200  # the veth was re-addressed
    assert get(h.name) == h


@pytest.mark.sandbox
def test_two_hosts_at_once_each_at_its_own_address(make_sandbox: MakeSandbox) -> None:
    a, b = make_sandbox(), make_sandbox()
    assert a.address != b.address
    for h in (a, b):
        assert http_status(h.address) == 200
        assert h.exec(["hostname"]).stdout.decode().strip() == h.name
        # separate cgroups: signalling a unit of one host works (shared cgroups gave EIO)
        h.exec(["systemctl", "kill", "-s", "HUP", "nginx"])
    ids = {h.exec(["cat", "/etc/machine-id"]).stdout for h in (a, b)}
    keys = {h.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout for h in (a, b)}
    assert len(ids) == 2 and len(keys) == 2
    listed = {i.name: i for i in list_sandboxes()}
    assert listed[a.name].state == "running" and listed[b.name].address == b.address


@pytest.mark.sandbox
def test_destroy_leaves_nothing_even_without_supervisor(make_sandbox: MakeSandbox) -> None:
    h = make_sandbox()
    assert leftovers(h.name)  # sanity: the checks do see a live host
    pid = supervisor_pid(h.paths)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # nspawn keeps running, orphaned
    destroy(h.name)
    assert leftovers(h.name) == []
    destroy(h.name)  # idempotent
    with pytest.raises(UsageError, match="no sandbox"):
        get(h.name)
