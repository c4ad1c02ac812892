"""[processes.NAME] workers and [timers.NAME] timers end to end on one sandbox host (issue 10
item 4): deployed with the web unit, running the new release after a deploy and the old one
after a rollback, stopped and removed when a release no longer has them, gone after uninstall;
the timer fires; `status` shows both and `logs --process` finds the worker's lines.

The steps share one host and one service and build on each other. The worker and the timer
write what they are (their mark and working directory, i.e. the release) into the service's
state directory, the one place they may write. Traffic: none beyond the sandbox's commands.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.errors import IntegratorError
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

NAME = "jobs"
STATE = f"/var/lib/{NAME}"
WORKER = f"""\
import json, os, signal, sys, time
from {NAME}.mark import MARK

state = os.environ["STATE_DIRECTORY"]
with open(os.path.join(state, "worker.json"), "w") as out:
    json.dump({{"mark": MARK, "cwd": os.getcwd(), "pid": os.getpid()}}, out)
print(f"worker {{MARK}} started", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(3600)
"""
TICK = f"""\
import os
from {NAME}.mark import MARK

with open(os.path.join(os.environ["STATE_DIRECTORY"], "ticks"), "a") as out:
    out.write(MARK + " " + os.getcwd() + "\\n")
"""
PROCESSES = f"""
[processes.worker]
command = ["python", "-m", "{NAME}.worker"]

[timers.tick]
command = ["python", "-m", "{NAME}.tick"]
on_calendar = "*:*:0/5"
timeout = 60
"""


@dataclass(frozen=True)
class Bundles:
    v1: Path
    v2: Path
    plain: Path  # v3: no worker, no timer
    bad_zone: Path  # v4: a time zone the pattern lets through and the host does not have


def _mark(src: Path, mark: str) -> None:
    (src / "src" / NAME / "mark.py").write_text(f"MARK = {mark!r}\n")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("procs")
    src = _new_service(NAME, root / NAME)
    (src / "src" / NAME / "worker.py").write_text(WORKER)
    (src / "src" / NAME / "tick.py").write_text(TICK)
    toml = src / "service.toml"
    plain = toml.read_text()
    toml.write_text(plain + PROCESSES)
    _mark(src, "1")
    v1 = _build(src, root / "dist1")
    _mark(src, "2")
    v2 = _build(src, root / "dist2")
    _mark(src, "3")
    toml.write_text(plain)
    v3 = _build(src, root / "dist3")
    toml.write_text(plain + PROCESSES.replace("*:*:0/5", "*:*:0/5 Mars/Olympus_Mons"))
    return Bundles(v1, v2, v3, _build(src, root / "dist4"))


@pytest.fixture(scope="module")
def host(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def _current(box: Sandbox) -> str:
    return sh(box, "readlink", f"/opt/{NAME}/current").stdout.decode().strip().rsplit("/", 1)[-1]


def _worker(box: Sandbox) -> dict[str, object]:
    return json.loads(sh(box, "cat", f"{STATE}/worker.json").stdout or b"{}")


def _wait_for_tick(box: Sandbox, mark: str, release: str, timeout_s: float = 40.0) -> str:
    """The timer's next run from `release` (it fires every 5 s); its line."""
    wanted = f"{mark} /opt/{NAME}/releases/{release}/app"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ticks = sh(box, "cat", f"{STATE}/ticks").stdout.decode().splitlines()
        if wanted in ticks:
            return wanted
        time.sleep(1)
    status = sh(
        box, "systemctl", "status", "--no-pager", f"{NAME}-timer-tick.timer", f"{NAME}-timer-tick.service"
    )
    raise AssertionError(f"no tick {wanted!r} in {timeout_s:.0f} s: {ticks[-5:]}\n{status.stdout.decode()}")


def _runs(box: Sandbox, mark: str) -> None:
    """The worker runs the current release (its working directory is `current`'s app)."""
    release = _current(box)
    seen = _worker(box)
    assert seen.get("mark") == mark and seen.get("cwd") == f"/opt/{NAME}/releases/{release}/app", seen
    active = sh(box, "systemctl", "is-active", f"{NAME}-proc-worker.service").stdout.decode().strip()
    assert active == "active"
    _wait_for_tick(box, mark, release)


def test_a_worker_and_a_timer_run_the_deployed_release(host: Sandbox, bundles: Bundles) -> None:
    result = ok(commands.deploy(DeployOptions(bundles.v1), SandboxTarget(host.name)))
    assert result.data["processes"]["restarted"] == [
        f"{NAME}-proc-worker.service",
        f"{NAME}-timer-tick.timer",
    ]
    _runs(host, "1")
    enabled = sh(host, "systemctl", "is-enabled", f"{NAME}-proc-worker.service", f"{NAME}-timer-tick.timer")
    assert enabled.stdout.decode().split() == ["enabled", "enabled"]  # a reboot starts them too


def test_a_new_release_restarts_them_on_it(host: Sandbox, bundles: Bundles) -> None:
    before = _worker(host)["pid"]
    ok(commands.deploy(DeployOptions(bundles.v2), SandboxTarget(host.name)))
    _runs(host, "2")
    assert _worker(host)["pid"] != before


def test_status_and_logs_show_them(host: Sandbox, bundles: Bundles) -> None:
    status = ok(commands.status(NAME, SandboxTarget(host.name)))
    procs = {p["name"]: p for p in status.data["services"][0]["processes"]}
    assert procs["worker"]["state"] == "active (running)" and procs["worker"]["ok"]
    # "running" while a run is going on (every 5 s): both are a timer doing its job
    assert procs["tick"]["state"] in ("active (waiting)", "active (running)") and procs["tick"]["ok"]
    assert procs["tick"]["last_result"] == "success" and procs["tick"]["last"]
    assert any(line.startswith("  process worker: active (running)") for line in status.lines), status.lines
    logs = ok(commands.logs(NAME, SandboxTarget(host.name), process="worker", lines=50))
    assert any(line.endswith(f"{NAME}[{_worker(host)['pid']}]: worker 2 started") for line in logs.lines), (
        logs.lines
    )
    assert not any(
        "worker 2 started" in line for line in ok(commands.logs(NAME, SandboxTarget(host.name))).lines
    )


def test_a_rollback_takes_them_back_to_the_previous_release(host: Sandbox, bundles: Bundles) -> None:
    ok(commands.rollback(NAME, SandboxTarget(host.name)))
    _runs(host, "1")


def test_a_release_without_them_stops_and_removes_their_units(host: Sandbox, bundles: Bundles) -> None:
    result = ok(commands.deploy(DeployOptions(bundles.plain), SandboxTarget(host.name)))
    units = [f"{NAME}-timer-tick.timer", f"{NAME}-proc-worker.service", f"{NAME}-timer-tick.service"]
    assert result.data["processes"]["stopped"] == units
    for unit in units:
        assert sh(host, "test", "-e", f"/etc/systemd/system/{unit}").returncode == 1, unit
        state = sh(host, "systemctl", "show", "-p", "ActiveState,LoadState", unit).stdout.decode().split()
        assert state == ["LoadState=not-found", "ActiveState=inactive"], (unit, state)
    assert sh(host, "pgrep", "-f", f"{NAME}.worker").returncode == 1


def test_a_calendar_the_host_refuses_changes_nothing(host: Sandbox, bundles: Bundles) -> None:
    before = _current(host)
    with pytest.raises(IntegratorError, match=r"\[timers\.tick\] on_calendar .*Mars/Olympus_Mons") as err:
        commands.deploy(DeployOptions(bundles.bad_zone), SandboxTarget(host.name))
    assert err.value.exit_code == 2
    assert _current(host) == before
    assert sh(host, "test", "-e", f"/etc/systemd/system/{NAME}-timer-tick.timer").returncode == 1


def test_uninstall_removes_them(host: Sandbox, bundles: Bundles) -> None:
    ok(commands.rollback(NAME, SandboxTarget(host.name)))  # back to v2: a worker and a timer again
    _runs(host, "2")
    ok(commands.uninstall(NAME, SandboxTarget(host.name)))
    listed = sh(host, "systemctl", "list-units", "--all", "--no-legend", f"{NAME}-*").stdout.decode()
    assert listed.strip() == ""
    found = sh(host, "sh", "-c", f"ls /etc/systemd/system | grep '^{NAME}-' || true").stdout.decode()
    assert found.strip() == ""
    assert sh(host, "pgrep", "-f", f"{NAME}.worker").returncode == 1
