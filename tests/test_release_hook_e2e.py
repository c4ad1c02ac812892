"""The release hook (`[deploy] release`) end to end on one sandbox host (issue 10 item 1): it
runs once per deploy with the NEW release's venv, before the switch, not on a no-op redeploy;
one that exits 1 fails the deploy with its stderr shown while the previous release keeps serving.

The steps share one host and one service and build on each other. Traffic goes only to the
sandbox's address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, _set_version, get, ok, serving_unit, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

NAME = "hooked"
COUNT = f"/var/lib/{NAME}/hook-runs"  # the state directory: the one place the hook may write
# appends the interpreter it ran with (the release's venv) to COUNT
COUNTING = f"import sys; open({COUNT!r}, 'a').write(sys.executable + chr(10)); print('migrated')"
FAILING = "import sys; print('step 1 ok'); sys.stderr.write('migration failed: boom\\n'); sys.exit(1)"
SLOW = "import time; print('slow migration started', flush=True); time.sleep(300)"


@dataclass(frozen=True)
class Bundles:
    v1: Path
    v2: Path
    broken: Path  # v3: its release command exits 1
    slow: Path  # v4: its release command runs past release_timeout (2 s)


def _with_hook(src: Path, code: str, timeout: int = 600) -> None:
    toml = src / "service.toml"
    text = toml.read_text()
    start = text.index("[deploy]\n")
    hook = f"[deploy]\nkeep_releases = 5\nrelease = {json.dumps(['python', '-c', code])}\n"
    hook += f"release_timeout = {timeout}\n"
    toml.write_text(text[:start] + hook)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("hooks")
    src = _new_service(NAME, root / NAME)
    _with_hook(src, COUNTING)
    v1 = _build(src, root / "dist1")
    _set_version(src, "0.1.0", "0.2.0")
    v2 = _build(src, root / "dist2")
    _set_version(src, "0.2.0", "0.3.0")
    _with_hook(src, FAILING)
    broken = _build(src, root / "dist3")
    _set_version(src, "0.3.0", "0.4.0")
    _with_hook(src, SLOW, timeout=2)
    return Bundles(v1, v2, broken, _build(src, root / "dist4"))


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def _runs(box: Sandbox) -> list[str]:
    proc = sh(box, "cat", COUNT)
    return proc.stdout.decode().splitlines() if proc.returncode == 0 else []


def _current(box: Sandbox) -> str:
    return sh(box, "readlink", f"/opt/{NAME}/current").stdout.decode().strip().rsplit("/", 1)[-1]


def test_the_hook_runs_once_per_deploy_with_the_new_venv(box: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(box.name)
    first = ok(commands.deploy(DeployOptions(bundles.v1), target))
    assert _runs(box) == [f"/opt/{NAME}/releases/{first.data['release']}/venv/bin/python"]
    # the same bundle again: nothing to do, the hook does not run
    again = ok(commands.deploy(DeployOptions(bundles.v1), target))
    assert again.data["changed"] is False
    assert len(_runs(box)) == 1
    second = ok(commands.deploy(DeployOptions(bundles.v2), target))
    runs = _runs(box)
    assert len(runs) == 2 and f"/releases/{second.data['release']}/venv/" in runs[1]
    assert _current(box) == second.data["release"]


def test_a_failing_hook_fails_the_deploy_and_the_old_release_keeps_serving(
    box: Sandbox, bundles: Bundles
) -> None:
    target = SandboxTarget(box.name)
    serving = _current(box)
    assert serving  # the step before left v2 serving
    result: Result = commands.deploy(DeployOptions(bundles.broken), target)
    text = "\n".join(result.lines)
    assert result.exit_code == 1, text
    assert "exited with 1" in text and "migration failed: boom" in text and "step 1 ok" in text
    assert _current(box) == serving
    unit = f"{serving_unit(box, NAME)}.service"
    assert sh(box, "systemctl", "is-active", unit).stdout.decode().strip() == "active"
    status, body, _headers = get(box.address, "/healthz", host=NAME)
    assert status == 200 and "ok" in body
    assert len(_runs(box)) == 2  # the failing command is not the counting one


def test_a_hook_past_its_timeout_fails_the_deploy_and_the_old_release_keeps_serving(
    box: Sandbox, bundles: Bundles
) -> None:
    """release_timeout = 2 and a hook that would take 300 s: systemd stops it (RuntimeMaxSec=),
    the deploy fails saying so with the hook's output, and nothing of it is left running."""
    target = SandboxTarget(box.name)
    serving = _current(box)
    result: Result = commands.deploy(DeployOptions(bundles.slow), target)
    text = "\n".join(result.lines)
    assert result.exit_code == 1, text
    assert "ran longer than 2 s" in text and "slow migration started" in text, text
    assert _current(box) == serving
    status, body, _headers = get(box.address, "/healthz", host=NAME)
    assert status == 200 and "ok" in body
    left = sh(box, "systemctl", "list-units", "--all", "--no-legend", f"{NAME}-release-*").stdout.decode()
    assert "running" not in left and "activating" not in left, left
