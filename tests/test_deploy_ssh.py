"""`--ssh USER@HOST` against a real sshd, and `logs --follow` on ssh and sandbox targets.

A sandbox host's own sshd (Debian's defaults: root may log in with a key only) gets a throwaway
key pair's public half as root's authorized_keys. Its host key is read from inside the host, not
over the network, into a known_hosts file; an ssh config in a temporary directory names both and
reaches integrator through INTEGRATOR_SSH_CONFIG, so this machine's ~/.ssh is neither read nor
written. Everything goes through the real CLI. Traffic goes only to the sandbox address and to
127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.cli import main
from integrator.errors import UsageError
from integrator.sandbox import Sandbox
from integrator.targets.transport import SSH_CONFIG_ENV, SshTarget, ssh_message, target_from_args
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, _set_version, get, sh, version

SERVICE = "viassh"
CLI = [sys.executable, "-m", "integrator.cli"]
# A step as it starts, printed on stderr before any error (host/progress.py text_sink).
PROGRESS_LINE = re.compile(r"integrator: +[0-9]+\.[0-9] s  \S.*")


# --- without a host -------------------------------------------------------------------------------


def test_ssh_config_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  Port 2222\n")
    monkeypatch.setenv(SSH_CONFIG_ENV, str(config))
    target = target_from_args(ssh="root@web1")
    assert isinstance(target, SshTarget) and target == SshTarget("root@web1", config=str(config))
    argv = target._remote_argv(["true"])
    assert argv[:5] == ["ssh", "-F", str(config), "-o", "BatchMode=yes"]
    monkeypatch.setenv(SSH_CONFIG_ENV, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match=r"INTEGRATOR_SSH_CONFIG=.*missing: no such file"):
        target_from_args(ssh="root@web1")


def test_ssh_message_is_one_line_naming_the_reason() -> None:
    refused = b"ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n"
    assert ssh_message(refused) == "connect to host 127.0.0.1 port 1: Connection refused"
    changed = (
        b"@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
        b"Offending ED25519 key in /tmp/known_hosts:1\r\n"
        b"Host key for 10.0.0.2 has changed and you have requested strict checking.\r\n"
        b"Host key verification failed.\r\n"
    )
    assert ssh_message(changed) == (
        "Host key for 10.0.0.2 has changed and you have requested strict checking. "
        "Host key verification failed."
    )
    assert ssh_message(b"") == "no message from ssh"


def test_follow_stops_the_whole_process_group(tmp_path: Path) -> None:
    """SIGTERM to `integrator logs -f` (here: the stream it runs) ends what its command started."""
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo started; wait"
    code = f"from integrator.host.stream import stream; raise SystemExit(stream(['sh', '-c', {script!r}]))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert "started" in read_until(proc, "started", 10)
        grandchild = int(pidfile.read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert not pid_alive(grandchild)


def test_follow_ends_when_its_reader_is_gone(tmp_path: Path) -> None:
    """`integrator logs -f | head -1` ends at once, not at the next journal line."""
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pidfile}; echo one; echo two; wait"
    code = f"from integrator.host.stream import stream; raise SystemExit(stream(['sh', '-c', {script!r}]))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        read_until(proc, "two", 10)
        assert proc.stdout is not None
        proc.stdout.close()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert not pid_alive(int(pidfile.read_text()))


# --- a host reached over ssh ----------------------------------------------------------------------


@dataclass(frozen=True)
class SshHost:
    box: Sandbox
    config: Path  # the ssh config for INTEGRATOR_SSH_CONFIG
    dir: Path  # key pair, known_hosts, config

    @property
    def dest(self) -> str:
        return f"root@{self.box.address}"


@dataclass(frozen=True)
class Bundles:
    v1: Path
    v2: Path


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("ssh-bundles")
    src = _new_service(SERVICE, root / SERVICE)
    v1 = _build(src, root / "1")
    _set_version(src, "0.1.0", "0.2.0")
    return Bundles(v1, _build(src, root / "2"))


@pytest.fixture(scope="module")
def home_ssh() -> object:
    """This machine's ~/.ssh as it was before any test here ran ssh."""
    return snapshot(Path.home() / ".ssh")


@pytest.fixture(scope="module")
def ssh_host(
    make_module_sandbox: MakeSandbox, tmp_path_factory: pytest.TempPathFactory, home_ssh: object
) -> SshHost:
    """One host for the module (the lifecycle steps build on each other)."""
    box = make_module_sandbox()
    work = tmp_path_factory.mktemp("ssh")
    return SshHost(box, allow_root_login(box, work), work)


@pytest.fixture
def use_config(ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch) -> SshHost:
    monkeypatch.setenv(SSH_CONFIG_ENV, str(ssh_host.config))
    return ssh_host


def allow_root_login(box: Sandbox, work: Path) -> Path:
    """Authorize a throwaway key for root, trust the host key read from inside; the ssh config."""
    key = work / "id_ed25519"
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "integrator-test", "-f", str(key)]
    subprocess.run(keygen, check=True)
    box.exec(["install", "-d", "-m", "0700", "-o", "root", "-g", "root", "/root/.ssh"])
    box.copy_in(key.with_name("id_ed25519.pub"), "/root/.ssh/authorized_keys")
    box.exec(["chmod", "0600", "/root/.ssh/authorized_keys"])
    modes = box.exec(["stat", "-c", "%a %U", "/root/.ssh", "/root/.ssh/authorized_keys"]).stdout.decode()
    assert modes.split("\n")[:2] == ["700 root", "600 root"]
    # Debian's default PermitRootLogin prohibit-password (sshd -T: without-password) admits keys.
    settings = box.exec(["sshd", "-T"]).stdout.decode().splitlines()
    assert "permitrootlogin without-password" in settings or "permitrootlogin prohibit-password" in settings
    if sh(box, "systemctl", "is-active", "ssh").returncode != 0:
        box.exec(["systemctl", "start", "ssh"])
    assert sh(box, "systemctl", "is-active", "ssh").stdout.decode().strip() == "active"
    keytype, blob = box.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.decode().split()[:2]
    known = work / "known_hosts"
    known.write_text(f"{box.address} {keytype} {blob}\n")
    return write_config(work / "ssh_config", identity=key, known_hosts=known)


def write_config(path: Path, identity: Path, known_hosts: Path, port: int = 22) -> Path:
    """A self-contained ssh config: this key only, this known_hosts only, no prompts."""
    path.write_text(
        textwrap.dedent(f"""\
            Host *
              Port {port}
              IdentityFile {identity}
              IdentitiesOnly yes
              UserKnownHostsFile {known_hosts}
              GlobalKnownHostsFile /dev/null
              StrictHostKeyChecking yes
              ConnectTimeout 10
            """)
    )
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`integrator ARGV` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the lifecycle over ssh, in order -------------------------------------------------------------


@pytest.mark.slow
def test_deploy_over_ssh_serves_https(
    use_config: SshHost, bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    code, out, err = cli(capsys, "deploy", str(bundles.v1), "--ssh", use_config.dest)
    assert code == 0, out + err
    print(f"first deploy over ssh: {time.monotonic() - start:.1f} s")
    status, body, _ = get(use_config.box.address, "/", host=SERVICE)
    assert status == 200 and json.loads(body) == {**json.loads(body), "service": SERVICE, "version": "0.1.0"}
    leftovers = sh(use_config.box, "sh", "-c", "ls -A /tmp /var/tmp/integrator").stdout.decode()
    assert ".integrator-" not in leftovers and "deploy-" not in leftovers  # copies removed
    assert sh(use_config.box, "ls", "-A", "/var/cache/integrator-host/staging").stdout == b""  # and here


@pytest.mark.slow
def test_status_list_and_logs_over_ssh(use_config: SshHost, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "status", SERVICE, "--ssh", use_config.dest)
    assert code == 0 and out.startswith(f"{SERVICE}: ok - release "), out + err
    code, out, _ = cli(capsys, "list", "--ssh", use_config.dest, "--json")
    assert code == 0 and [s["service"] for s in json.loads(out)["services"]] == [SERVICE]
    get(use_config.box.address, "/", host=SERVICE)
    code, out, err = cli(capsys, "logs", SERVICE, "--ssh", use_config.dest, "-n", "5")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5, out + err
    assert any('"path":"/"' in line for line in lines), out  # the request just made


@pytest.mark.slow
def test_logs_follow_over_ssh_streams_and_leaves_nothing_running(use_config: SshHost) -> None:
    logins = ssh_logins(use_config.box)
    took, gone = follow_and_stop(use_config.box, ["--ssh", use_config.dest], use_config.config)
    # the check that the host answers and the stream: one connection (targets/ssh.py)
    assert ssh_logins(use_config.box) == logins + 1
    print(f"logs -f over ssh: request line after {took:.2f} s, nothing left {gone:.2f} s after exit")
    # Nothing of ours is left on this machine either (ssh ran with our config file).
    assert subprocess.run(["pgrep", "-f", str(use_config.config)], capture_output=True).returncode == 1


@pytest.mark.slow
def test_a_first_command_and_run_over_ssh_each_open_one_connection(
    use_config: SshHost, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host that has not cached the host tool is asked again with it, and `run` caches the
    tool before it runs the command with our terminal: one ssh connection each all the same."""
    box = use_config.box
    for argv in (["status", SERVICE], ["run", SERVICE, "--", "/usr/bin/true"]):
        box.exec(["rm", "-rf", "/var/cache/integrator-host/tool"])  # as on a host never reached
        logins = ssh_logins(box)
        code, out, err = cli(capsys, *argv[:2], "--ssh", use_config.dest, *argv[2:])
        assert code == 0, out + err
        assert ssh_logins(box) == logins + 1, argv
    assert sh(box, "ls", "/var/cache/integrator-host/tool").stdout  # cached again
    # the shared connection ended with the command: no ssh of ours is left on this machine
    assert subprocess.run(["pgrep", "-f", str(use_config.config)], capture_output=True).returncode == 1


@pytest.mark.slow
def test_logs_follow_on_a_sandbox_target_leaves_nothing_running(ssh_host: SshHost) -> None:
    took, gone = follow_and_stop(ssh_host.box, ["--host", ssh_host.box.name], None)
    print(f"logs -f on the sandbox: request line after {took:.2f} s, nothing left {gone:.2f} s after exit")


@pytest.mark.slow
def test_redeploy_rollback_and_uninstall_over_ssh(
    use_config: SshHost, bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    dest, address = use_config.dest, use_config.box.address
    start = time.monotonic()
    assert cli(capsys, "deploy", str(bundles.v2), "--ssh", dest)[0] == 0
    deployed = time.monotonic()
    assert version(address, SERVICE) == "0.2.0"
    code, out, err = cli(capsys, "rollback", SERVICE, "--ssh", dest)
    assert code == 0, out + err
    rolled_back = time.monotonic()
    assert version(address, SERVICE) == "0.1.0"
    code, out, _ = cli(capsys, "doctor", SERVICE, "--ssh", dest)
    assert code == 0 and "no problems found" in out, out
    code, out, err = cli(capsys, "uninstall", SERVICE, "--ssh", dest, "--purge")
    assert code == 0, out + err
    assert sh(use_config.box, "nginx", "-t").returncode == 0
    for path in (f"/opt/{SERVICE}", f"/etc/nginx/conf.d/{SERVICE}.conf", f"/var/lib/integrator/{SERVICE}"):
        assert sh(use_config.box, "test", "-e", path).returncode != 0, path
    code, _, err = cli(capsys, "status", SERVICE, "--ssh", dest)
    assert code == 1 and "is not deployed" in err
    print(f"over ssh: second deploy {deployed - start:.1f} s, rollback {rolled_back - deployed:.1f} s")


STEPS = ["send", "verify", "facts", "check", "user", "unpack", "venv", "tls", "secrets", "labels", "write",
         "nginx-test", "start", "slot-health", "route", "nginx-reload", "health", "switch", "drain", "record",
         "cleanup"]  # fmt: skip


@pytest.mark.slow
def test_deploy_over_ssh_streams_each_step_as_it_starts(
    use_config: SshHost, bundles: Bundles, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json-lines: a line per step while the host works, then the result; one ssh connection.
    Without --json the same steps are text on stderr (the second deploy here). After the
    lifecycle above: a first deploy again, removed at the end."""
    logins = ssh_logins(use_config.box)
    argv = [*CLI, "deploy", str(bundles.v1), "--ssh", use_config.dest, "--json-lines"]
    env = {**os.environ, SSH_CONFIG_ENV: str(use_config.config)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    events, running_at = [], {}
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:  # ends when the deploy does (bounded by its own timeouts)
            events.append(json.loads(raw))
            running_at[events[-1].get("step", "")] = proc.poll() is None
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
    *steps, result = events
    assert [e["step"] for e in steps] == STEPS and all(e["event"] == "step" for e in steps)
    assert running_at["verify"] and running_at["health"]  # shown while the host was working
    assert result["event"] == "result" and result["ok"] is True and result["service"] == SERVICE
    print("over ssh, seconds since start:", {e["step"]: e["t"] for e in steps})
    assert ssh_logins(use_config.box) == logins + 1
    assert version(use_config.box.address, SERVICE) == "0.1.0"
    code, out, err = cli(capsys, "deploy", str(bundles.v2), "--ssh", use_config.dest)
    assert code == 0, out + err
    assert re.search(r"^integrator: +\d+\.\d s  send \(ssh root@", err, re.M), err
    assert re.search(r"^integrator: +\d+\.\d s  write$", err, re.M) and "s  health\n" in err, err
    assert version(use_config.box.address, SERVICE) == "0.2.0"
    assert cli(capsys, "uninstall", SERVICE, "--ssh", use_config.dest, "--purge")[0] == 0


# --- a hostile local user on the host (issue 8, finding 2) ----------------------------------------

MALLORY = "mallory"
MARKER = "/PLANTED-CODE-RAN-AS-ROOT"  # only root can create a file in /


def evil_pyz(path: Path) -> Path:
    """What a local user would plant under a tool's name: it leaves a mark when root runs it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__main__.py", f"open({MARKER!r}, 'w').write('ran as root')\n")
    return path


def ssh_logins(box: Sandbox) -> int:
    """How many ssh connections the host's sshd has accepted so far."""
    box.exec(["journalctl", "--sync"])
    log = sh(box, "journalctl", "-u", "ssh.service", "--no-pager", "-o", "cat").stdout.decode()
    return log.count("Accepted publickey for root")


def plant_everything(box: Sandbox, work: Path) -> str:
    """As an unprivileged user, before integrator ever ran there: every directory and file name
    integrator uses or used, world-writable, holding a planted tool or a symlink to /etc/passwd.
    Returns the listing (owners, modes, targets) of what was planted."""
    from integrator.targets.transport import host_tool

    tool = f"integrator-host-{host_tool()[1][:16]}.pyz"  # the name of this integrator's tool, then and now
    old_tool = f"/var/tmp/integrator/{tool}"  # where integrator cached the tool before
    old_stage = "/tmp/.integrator-" + hashlib.sha256(old_tool.encode()).hexdigest()[:12]
    box.exec(["useradd", "--create-home", MALLORY])
    box.copy_in(evil_pyz(work / "evil.pyz"), f"/home/{MALLORY}/evil.pyz")
    dirs = [
        "/var/tmp/integrator",
        "/var/tmp/integrator/deploy-0",
        "/var/tmp/integrator-host/tool",
        "/var/tmp/integrator-host/staging",
        "/tmp/integrator-host/tool",
        "/tmp/integrator-host/staging",
    ]
    script = "; ".join(
        [
            "set -u",
            f"mkdir -p {' '.join(dirs)}",
            f"chmod 0777 {' '.join(dirs)}",
            *(f"cp ~/evil.pyz {d}/{tool}" for d in ("/var/tmp/integrator", "/var/tmp/integrator-host/tool")),
            f"cp ~/evil.pyz /tmp/integrator-host/tool/{tool}",
            f"ln -s /etc/passwd {old_stage}",
            f"ln -s /etc/passwd /var/tmp/integrator/deploy-0/{SERVICE}-0.1.0.pyz",
            "ln -s /etc/passwd /tmp/integrator-host/staging/run-0",
            # not possible for a local user: /var/cache is root's (the attempt is part of the attack)
            "mkdir -p /var/cache/integrator-host/tool 2>/dev/null || true",
        ]
    )
    box.exec(["chown", f"{MALLORY}:", f"/home/{MALLORY}/evil.pyz"])
    box.exec(["runuser", "-u", MALLORY, "--", "sh", "-c", f"cd && {script}"])
    return planted_listing(box)


def planted_listing(box: Sandbox) -> str:
    find = ["find", "/tmp", "/var/tmp", "-user", MALLORY, "-printf", "%p %u %m %l %s\n"]
    return "\n".join(sorted(sh(box, *find).stdout.decode().splitlines()))


@pytest.mark.slow
def test_a_hostile_local_user_who_plants_every_name_first_gets_nothing(
    make_sandbox: Callable[..., Sandbox],
    bundles: Bundles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box = make_sandbox()
    monkeypatch.setenv(SSH_CONFIG_ENV, str(allow_root_login(box, tmp_path)))
    dest = f"root@{box.address}"
    planted = plant_everything(box, tmp_path)
    passwd = box.exec(["cat", "/etc/passwd"]).stdout.decode()
    assert "/var/tmp/integrator/integrator-host-" in planted and "/etc/passwd" in planted
    assert sh(box, "test", "-e", "/var/cache/integrator-host").returncode != 0

    logins = ssh_logins(box)
    code, out, err = cli(capsys, "status", "--ssh", dest)
    assert sh(box, "test", "-e", MARKER).returncode != 0, "the planted tool ran as root"
    assert code == 0, out + err
    assert ssh_logins(box) - logins == 1  # asked for the tool, then sent it: one connection (targets/ssh.py)

    start, logins = time.monotonic(), ssh_logins(box)
    code, out, err = cli(capsys, "deploy", str(bundles.v1), "--ssh", dest)
    assert code == 0, out + err
    print(f"first deploy over ssh beside a hostile user: {time.monotonic() - start:.1f} s")
    assert ssh_logins(box) - logins == 1  # tool, bundle and the deploy itself: one connection
    assert version(box.address, SERVICE) == "0.1.0"
    logins = ssh_logins(box)
    assert cli(capsys, "status", SERVICE, "--ssh", dest)[0] == 0 and ssh_logins(box) - logins == 1

    assert sh(box, "test", "-e", MARKER).returncode != 0, "the planted tool ran as root"
    now = box.exec(["cat", "/etc/passwd"]).stdout.decode()  # nothing written through a link to it
    assert [line for line in now.splitlines() if not line.startswith(f"{SERVICE}:")] == passwd.splitlines()
    assert planted_listing(box) == planted  # nothing of theirs was used, moved or written through
    owners = sh(
        box, "stat", "-c", "%n %U %a", *(f"/var/cache/integrator-host{d}" for d in ("", "/tool", "/staging"))
    )
    assert owners.stdout.decode().split("\n")[:3] == [
        "/var/cache/integrator-host root 700",
        "/var/cache/integrator-host/tool root 700",
        "/var/cache/integrator-host/staging root 700",
    ]
    assert sh(box, "ls", "-A", "/var/cache/integrator-host/staging").stdout == b""  # uploads removed

    # A host where that directory is not root's alone (made by someone else, or a link to theirs):
    # refused in one line before anything in it is read, let alone run.
    uid = sh(box, "id", "-u", MALLORY).stdout.decode().strip()
    for takeover in (
        f"chown -R {MALLORY}: /var/cache/integrator-host",
        f"mv /var/cache/integrator-host /home/{MALLORY}/ih && chown -R {MALLORY}: /home/{MALLORY}/ih"
        f" && ln -s /home/{MALLORY}/ih /var/cache/integrator-host",
    ):
        box.exec(["sh", "-c", takeover])
        box.exec(
            [
                "sh",
                "-c",
                f"for f in /var/cache/integrator-host/tool/*; do cp /home/{MALLORY}/evil.pyz $f; done",
            ]
        )
        code, out, err = cli(capsys, "status", "--ssh", dest)
        why = "is a symbolic link" if "ln -s" in takeover else f"is owned by uid {uid}, not root"
        assert (code, out) == (1, ""), out + err
        assert err == (
            "integrator: error: refusing to run as root from /var/cache/integrator-host: "
            f"/var/cache/integrator-host {why}; check who made it, remove it as root "
            "(rm -rf /var/cache/integrator-host), then retry\n"
        )
        assert sh(box, "test", "-e", MARKER).returncode != 0, "the planted tool ran as root"
        box.exec(["sh", "-c", f"rm -rf /var/cache/integrator-host /home/{MALLORY}/ih"])
        assert cli(capsys, "status", SERVICE, "--ssh", dest)[0] == 0  # the next step the message names


# --- hosts that cannot be reached or trusted ------------------------------------------------------


@pytest.mark.slow
def test_refused_connection_is_one_clear_line(
    ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        config = write_config(
            ssh_host.dir / "refused_config", ssh_host.dir / "id_ed25519", ssh_host.dir / "known_hosts", port
        )
        monkeypatch.setenv(SSH_CONFIG_ENV, str(config))
        for verb in (["status"], ["logs", SERVICE, "-f"]):
            code, out, err = cli(capsys, *verb, "--ssh", "root@127.0.0.1")
            assert (code, out) == (1, "")
            assert err == (
                "integrator: error: ssh to root@127.0.0.1 failed: "
                f"connect to host 127.0.0.1 port {port}: Connection refused\n"
            )


@pytest.mark.slow
def test_changed_host_key_is_refused_before_anything_is_copied(
    ssh_host: SshHost, bundles: Bundles, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = ssh_host.dir / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = ssh_host.dir / "wrong_known_hosts"
    known.write_text(f"{ssh_host.box.address} {other.with_name('other_host_key.pub').read_text()}")
    config = write_config(ssh_host.dir / "wrong_key_config", ssh_host.dir / "id_ed25519", known)
    monkeypatch.setenv(SSH_CONFIG_ENV, str(config))
    before = sh(ssh_host.box, "ls", "-A", "/var/tmp").stdout
    code, out, err = cli(capsys, "deploy", str(bundles.v1), "--ssh", ssh_host.dest)
    # the steps printed as they start (`send`), then the error: one line
    assert (code, out) == (1, "") and len(error_lines(err)) == 1, err
    assert f"ssh to {ssh_host.dest} failed: Host key for {ssh_host.box.address} has changed" in err
    assert err.endswith("Host key verification failed.\n")
    assert sh(ssh_host.box, "ls", "-A", "/var/tmp").stdout == before


def error_lines(err: str) -> list[str]:
    """stderr without the progress lines (`integrator:    0.1 s  send`, host/progress.py)."""
    return [line for line in err.splitlines() if not PROGRESS_LINE.fullmatch(line)]


@pytest.mark.slow
def test_unknown_key_is_one_clear_line(
    ssh_host: SshHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = ssh_host.dir / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    config = write_config(ssh_host.dir / "stranger_config", stranger, ssh_host.dir / "known_hosts")
    monkeypatch.setenv(SSH_CONFIG_ENV, str(config))
    code, out, err = cli(capsys, "doctor", "--ssh", ssh_host.dest)
    assert (code, out) == (1, "")
    assert err.startswith(f"integrator: error: ssh to {ssh_host.dest} failed: {ssh_host.dest}: ")
    assert "Permission denied (publickey" in err and len(error_lines(err)) == 1, err


@pytest.mark.slow
def test_this_machines_ssh_directory_was_not_touched(ssh_host: SshHost, home_ssh: object) -> None:
    assert snapshot(Path.home() / ".ssh") == home_ssh


# --- helpers ----------------------------------------------------------------------------------------


def follow_and_stop(box: Sandbox, target: list[str], config: Path | None) -> tuple[float, float]:
    """`integrator logs NAME -f` until a fresh request's JSON line arrives, then SIGTERM it:
    it exits 0 and no `journalctl -f` is left inside the host. Seconds from the request to its
    line, and from the exit until nothing was left."""
    env = {**os.environ, **({SSH_CONFIG_ENV: str(config)} if config else {})}
    argv = [*CLI, "logs", SERVICE, "-f", "-n", "3", *target]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        read_until(proc, "\n", 30)  # the last lines so far: the stream is up
        assert journal_followers(box), "no journalctl -f inside the host while following"
        start = time.monotonic()
        status, _, headers = get(box.address, "/", host=SERVICE)
        assert status == 200
        request_id = headers["X-Request-ID"]
        text = read_until(proc, request_id, 30)
        took = time.monotonic() - start
        line = next(line for line in text.splitlines() if request_id in line)
        logged = json.loads(line[line.index("{") :])
        assert logged["path"] == "/" and logged["status"] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
    exited = time.monotonic()  # over ssh, sshd ends the command just after the connection
    while journal_followers(box):
        assert time.monotonic() < exited + 5, f"left running inside: {journal_followers(box)}"
        time.sleep(0.05)
    return took, time.monotonic() - exited


def journal_followers(box: Sandbox) -> str:
    return sh(box, "pgrep", "-af", "journalctl.*-f").stdout.decode().strip()


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """Read the process's stdout until `needle` appears; fail after `timeout` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while needle.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen after {timeout} s; got:\n{seen.decode(errors='replace')}"
            if sel.select(left):
                chunk = os.read(fd, 65536)
                assert chunk, f"output ended before {needle!r}:\n{seen.decode(errors='replace')}"
                seen += chunk
    return seen.decode(errors="replace")


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def snapshot(path: Path) -> object:
    if not path.exists():
        return None
    return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in path.rglob("*"))
