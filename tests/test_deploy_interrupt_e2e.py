"""Interrupted deploys and rollbacks on a sandbox host (issue 8, findings 5 and 6).

No sleeping and guessing: the deploy lock file holds `PID STEP`, rewritten at each step, and a
watcher inside the host waits for a given step of a new holder and sends the signal then. After
each interruption the host must be consistent (the unit's ExecStart release == `current` == the
newest `ok` record; nginx -t passes; HTTPS answers with the expected version), at once when the
signal could be handled, else after ONE command (the next deploy, or `rollback`); `status` tells
the truth before and after. One host serves every case: each case starts from the state the
previous one left, which is exactly what is tested. `/opt` is a small tmpfs, for the full disk.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.test_deploy_e2e import _build, _new_service, _set_version, get, ok, serving_unit, sh, version

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

LOCK = "/var/lib/integrator/demo/deploy.lock"
OLD, NEW = "/root/demo1.pyz", "/root/demo2.pyz"  # 0.1.0 and 0.2.0 on the host

# Runs inside the host: for each `STEP:SIGNAL`, wait until a holder other than the one found at
# the start records STEP, then send it SIGNAL. Prints `ready` first, exits 3 if a step never came.
WATCHER = r"""
import os, signal, sys, time
path, plan = sys.argv[1], sys.argv[2:]
def note():
    try:
        words = open(path).read().split()
    except OSError:
        return None, ""
    return (int(words[0]), words[1]) if len(words) == 2 and words[0].isdigit() else (None, "")
stale = note()[0]
print("ready", flush=True)
deadline = time.monotonic() + 180
for item in plan:
    step, sig = item.split(":")
    while True:
        pid, now = note()
        if pid is not None and pid != stale and now == step:
            break
        if time.monotonic() > deadline:
            print(f"no step {step} came (last: {pid} {now})", flush=True)
            sys.exit(3)
        time.sleep(0.0005)
    os.kill(pid, getattr(signal, sig))
    print(f"sent {sig} to {pid} at step {step}", flush=True)
"""


@dataclass(frozen=True)
class Demo:
    old: Path  # demo 0.1.0
    new: Path  # demo 0.2.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    root = tmp_path_factory.mktemp("interrupt")
    src = _new_service("demo", root / "demo")
    old = _build(src, root / "dist/1")
    _set_version(src, "0.1.0", "0.2.0")
    return Demo(old, _build(src, root / "dist/2"))


@pytest.fixture(scope="module")
def box(demo: Demo) -> Iterator[Sandbox]:
    from integrator import sandbox
    from tests.sandbox_fixture import next_name, skip_or_fail_without_sandbox

    skip_or_fail_without_sandbox()
    name = next_name()
    host = sandbox.create(name)
    try:
        sh(host, "mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", "/opt")
        host.copy_in(demo.old, OLD)
        host.copy_in(demo.new, NEW)
        yield host
    finally:
        sandbox.destroy(name)


# --- helpers --------------------------------------------------------------------------------------


@dataclass
class Run:
    """One verb run on the host while a watcher interrupts it."""

    returncode: int
    payload: dict[str, Any]
    watcher: str

    @property
    def text(self) -> str:
        return "\n".join(self.payload.get("lines", [])) or json.dumps(self.payload)


def interrupted(host: Sandbox, argv: list[str], plan: list[str]) -> Run:
    """Run `python3 BUNDLE VERB --json` on the host; the watcher follows `plan` (STEP:SIGNAL ...)."""
    watcher = subprocess.Popen(
        host.exec_argv(["python3", "-c", WATCHER, LOCK, *plan]), stdout=subprocess.PIPE, text=True
    )
    assert watcher.stdout is not None and watcher.stdout.readline().strip() == "ready"
    verb = subprocess.Popen(host.exec_argv(["python3", *argv, "--json"]), stdout=subprocess.PIPE, text=True)
    try:
        out, _ = verb.communicate(timeout=240)
        try:
            said = watcher.communicate(timeout=5)[0]
        except subprocess.TimeoutExpired:
            watcher.kill()
            said = watcher.communicate()[0] + "(still waiting when the verb had ended)"
    finally:
        for proc in (verb, watcher):
            if proc.poll() is None:
                proc.kill()
    assert watcher.returncode == 0, f"the watcher never saw its step: {said}"
    try:
        payload = json.loads(out)
    except ValueError:
        payload = {}  # killed outright: no answer
    return Run(verb.returncode, payload, said)


def consistent(host: Sandbox) -> str:
    """The unit file, the unit systemd runs, `current` and the newest ok record name one release."""
    current = sh(host, "readlink", "/opt/demo/current").stdout.decode().strip().rsplit("/", 1)[-1]
    serving = f"{serving_unit(host, 'demo')}.service"
    unit = sh(host, "cat", f"/etc/systemd/system/{serving}").stdout.decode()
    loaded = sh(host, "systemctl", "show", "-p", "ExecStart", "--value", serving).stdout.decode()
    records = json.loads(sh(host, "cat", "/var/lib/integrator/demo/releases.json").stdout)["releases"]
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert f"/opt/demo/releases/{current}/venv/bin/gunicorn" in exec_start, (current, exec_start)
    assert f"/opt/demo/releases/{current}/venv/bin/gunicorn" in loaded, (current, loaded[:200])
    assert [r["id"] for r in records if r["outcome"] == "ok"][-1] == current
    assert not [r for r in records if r["outcome"] == "deploying"]
    assert sh(host, "nginx", "-t").returncode == 0
    return current


def status(host: Sandbox) -> Result:
    return commands.status("demo", SandboxTarget(host.name))


def healthy(host: Sandbox, expected_version: str) -> str:
    """Consistent, serving `expected_version` over HTTPS, and `status` says so (exit 0)."""
    current = consistent(host)
    assert version(host.address, "demo") == expected_version
    report = status(host)
    assert report.exit_code == 0 and report.lines[0].startswith("demo: ok - release " + current), report.lines
    assert not any("interrupted" in line or "deploying" in line for line in report.lines), report.lines
    return current


def newest_record(host: Sandbox) -> dict[str, Any]:
    records = json.loads(sh(host, "cat", "/var/lib/integrator/demo/releases.json").stdout)["releases"]
    return records[-1]


# --- the cases, in order ----------------------------------------------------------------------------


def test_first_release(box: Sandbox, demo: Demo) -> None:
    ok(commands.deploy(DeployOptions(demo.old), SandboxTarget(box.name)))
    healthy(box, "0.1.0")


def test_rollback_after_a_deploy_killed_at_its_health_check(box: Sandbox) -> None:
    """The issue's reproduction: the unit runs the new release, `current` names the old one and
    the record still says deploying. `rollback` used to say "no earlier good release", and
    `rollback --to <current>` "already current"."""
    before = consistent(box)
    run = interrupted(box, [NEW, "deploy"], ["health:SIGKILL"])
    assert run.returncode != 0 and run.payload == {}
    unit = sh(box, "cat", f"/etc/systemd/system/{serving_unit(box, 'demo')}.service").stdout.decode()
    assert f"/releases/{before}/" not in unit  # the mixed state the finding describes
    report = status(box)
    text = "\n".join(report.lines)
    assert report.exit_code == 1 and report.lines[0].startswith("demo: INTERRUPTED"), text
    assert "(repaired by the next deploy or rollback): pid" in text and "died at step health" in text
    result = ok(commands.rollback("demo", SandboxTarget(box.name)))
    assert f"rolled back: release {before} serves again" in result.lines[-1], result.lines
    assert healthy(box, "0.1.0") == before
    assert newest_record(box)["outcome"] == "interrupted"
    again = ok(commands.rollback("demo", SandboxTarget(box.name), to=before))
    assert "written again and restarted; health check passed" in again.lines[-1], again.lines
    assert healthy(box, "0.1.0") == before


def test_the_next_deploy_completes(box: Sandbox, demo: Demo) -> None:
    ok(commands.deploy(DeployOptions(demo.new), SandboxTarget(box.name)))
    healthy(box, "0.2.0")


SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
ACTIVATION = ("write", "nginx-test", "start", "slot-health", "health")  # "health": after the link moved


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("step", ACTIVATION)
def test_a_signal_during_a_rollback_restores_at_once(box: Sandbox, step: str, sig: str) -> None:
    before = consistent(box)
    run = interrupted(box, [NEW, "rollback"], [f"{step}:{sig}"])
    assert run.returncode == 128 + signal.Signals[sig], run.text
    assert f"failed: interrupted by {sig} at step " in run.text and "still serving" in run.text, run.text
    assert healthy(box, "0.2.0") == before


@pytest.mark.parametrize(
    ("step", "sig"),
    [
        ("unpack", "SIGTERM"),
        ("write", "SIGINT"),
        ("start", "SIGHUP"),
        ("health", "SIGTERM"),
        ("health", "SIGINT"),
    ],
)
def test_a_signal_during_a_deploy_restores_at_once(box: Sandbox, step: str, sig: str) -> None:
    before = consistent(box)
    run = interrupted(box, [OLD, "deploy"], [f"{step}:{sig}"])
    assert run.returncode == 128 + signal.Signals[sig], run.text
    assert f"failed: interrupted by {sig} at step " in run.text, run.text
    assert f"release {before} still serving" in run.text and run.payload["restored"] is True
    assert run.payload["outcome"] == "interrupted" and newest_record(box)["outcome"] == "interrupted"
    assert healthy(box, "0.2.0") == before


def test_status_shows_a_running_deploy_then_sighup_restores(box: Sandbox) -> None:
    """The watcher stops the deploy (SIGSTOP) as it starts unpacking, so `status` sees it under
    way however fast each step is (a venv reused from an earlier deploy takes milliseconds)."""
    before = consistent(box)
    watcher = subprocess.Popen(
        box.exec_argv(["python3", "-c", WATCHER, LOCK, "unpack:SIGSTOP"]), stdout=subprocess.PIPE, text=True
    )
    assert watcher.stdout is not None and watcher.stdout.readline().strip() == "ready"
    deploy = subprocess.Popen(box.exec_argv(["python3", OLD, "deploy", "--json"]), stdout=subprocess.PIPE)
    try:
        said = watcher.communicate(timeout=120)[0]
        assert watcher.returncode == 0, f"the watcher never saw its step: {said}"
        pid = said.split()[3]  # `sent SIGSTOP to PID at step unpack`
        report = status(box)
        assert f"  deploying (pid {pid}, step unpack)" in report.lines, report.lines
        assert report.exit_code == 0  # serving, healthy, a deploy under way: nothing wrong
        sh(box, "kill", "-HUP", pid)
        sh(box, "kill", "-CONT", pid)  # the pending SIGHUP is handled as it resumes
        # nsenter stops itself when its child stops (util-linux forwards job control): resume it too
        deploy.send_signal(signal.SIGCONT)
        out, _ = deploy.communicate(timeout=60)
    finally:
        for proc in (deploy, watcher):
            if proc.poll() is None:
                proc.kill()
    assert deploy.returncode == 128 + signal.SIGHUP
    assert "interrupted by SIGHUP at step unpack" in json.loads(out)["reason"]
    assert healthy(box, "0.2.0") == before


def test_a_second_signal_does_not_cut_the_restore_short(box: Sandbox) -> None:
    before = consistent(box)
    run = interrupted(box, [OLD, "deploy"], ["health:SIGTERM", "restore:SIGTERM"])
    assert "sent SIGTERM" in run.watcher and run.watcher.count("sent") == 2, run.watcher
    assert run.returncode == 128 + signal.SIGTERM and run.payload["restored"] is True, run.text
    assert healthy(box, "0.2.0") == before


def test_a_killed_rollback_is_repaired_by_the_next_deploy(box: Sandbox, demo: Demo) -> None:
    before = consistent(box)
    run = interrupted(box, [NEW, "rollback"], ["start:SIGKILL"])
    assert run.returncode != 0 and run.payload == {}
    report = status(box)
    assert report.exit_code == 1 and report.lines[0].startswith("demo: INTERRUPTED"), report.lines
    result = ok(commands.deploy(DeployOptions(demo.new), SandboxTarget(box.name)))
    assert result.lines[0].startswith("found an interrupted deploy or rollback (pid "), result.lines
    assert f"release {before} put back and serving" in result.lines[0]
    assert healthy(box, "0.2.0") == before


def test_a_full_disk_fails_cleanly_and_the_next_deploy_completes(box: Sandbox, demo: Demo) -> None:
    """ENOSPC while copying the bundle into the release (after unpacking it): one line naming
    the cause, the previous release serving, the record `failed`, not `deploying`."""
    before = consistent(box)
    free_k = int(sh(box, "sh", "-c", "df -k --output=avail /opt | tail -1").stdout)
    sh(box, "fallocate", "-l", f"{free_k - 1700}K", "/opt/filler")  # room for the unpacked files only
    try:
        run = interrupted(box, [OLD, "deploy"], [])
        assert run.returncode == 1, run.text
        assert "No space left on device" in run.payload["reason"], run.text
        assert run.payload["outcome"] == "failed" and newest_record(box)["outcome"] == "failed"
        assert healthy(box, "0.2.0") == before
    finally:
        sh(box, "rm", "-f", "/opt/filler")
    ok(commands.deploy(DeployOptions(demo.old), SandboxTarget(box.name)))
    healthy(box, "0.1.0")
    assert get(box.address, "/healthz", "demo")[0] == 200
