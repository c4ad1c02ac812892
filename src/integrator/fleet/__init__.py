"""Fleets (BUILD/CONTROLLER SIDE): the Ansible collection integrator.fleet and thin wrappers that
run its playbooks with `ansible-playbook`, streaming its output.

Nothing here deploys anything itself: the playbooks call the bundle's own command line on each
host (deploy, deploy --plan, rollback, status, lb, probe). This module only chooses the run's id (for the
fleet lock), finds the collection inside the installed package and maps a failed rollout to the
fleet-wide rollback playbook. ansible-core is needed on the controller only (docs/fleet.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import EnvironmentProblem, UsageError
from ..result import Result

COLLECTIONS_PATH = Path(__file__).parent  # holds ansible_collections/integrator/fleet
COLLECTION = COLLECTIONS_PATH / "ansible_collections" / "integrator" / "fleet"
PLAYBOOKS = ("rollout", "rollback", "status", "unlock")
CHANGING = ("rollout", "rollback")  # the playbooks that stage bundles and place the fleet's CA
INSTALL_HINT = "pip install 'ansible-core>=2.19,<2.20' on this controller (managed hosts need only python3)"


def tool(name: str) -> str:
    """An Ansible program: next to this Python (a venv) or on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise EnvironmentProblem(f"{name}: not found; {INSTALL_HINT}")
    return found


def run_id() -> str:
    """controller:pid:time. The lock it takes is stale once this process is gone."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def playbook_argv(
    playbook: str,
    inventory: Path,
    bundle: Path,
    *,
    check: bool = False,
    extra: dict[str, str] | None = None,
    program: str = "ansible-playbook",
) -> list[str]:
    """The ansible-playbook command line of one fleet verb (pure: tested as data)."""
    if playbook not in PLAYBOOKS:
        raise UsageError(f"no fleet playbook {playbook!r}")
    argv = [program, "-i", str(inventory), f"integrator.fleet.{playbook}"]
    argv += ["-e", f"integrator_bundle={bundle.resolve()}"]
    if playbook in CHANGING:  # status and unlock make nothing, not even the fleet's CA
        argv += ["-e", f"integrator_fleet_ca_dir={inventory.resolve().parent / 'integrator-fleet-ca'}"]
    for key, value in sorted((extra or {}).items()):
        argv += ["-e", f"{key}={value}"]
    return [*argv, "--check", "--diff"] if check else argv


def _environment(run: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
        INTEGRATOR_FLEET_RUN=run,
        ANSIBLE_RETRY_FILES_ENABLED="False",
    )
    return env


def run_playbook(argv: list[str], run: str) -> int:
    """ansible-playbook with its output streamed as it comes (stdout, stderr inherited)."""
    argv = [tool(argv[0]), *argv[1:]]
    return subprocess.run(argv, env=_environment(run), check=False).returncode


def _inputs(bundle: Path, inventory: Path) -> None:
    if not bundle.is_file():
        raise UsageError(f"{bundle}: no such bundle (build one with `integrator bundle`)")
    if not inventory.is_file():
        raise UsageError(f"{inventory}: no such inventory (docs/fleet.md has an example)")


def deploy(bundle: Path, inventory: Path, check: bool = False, serial: int | None = None) -> Result:
    """Roll `bundle` across the fleet; after a failed roll, the fleet-wide rollback."""
    _inputs(bundle, inventory)
    run = run_id()
    extra = {"integrator_serial": str(serial)} if serial else {}
    with tempfile.TemporaryDirectory(prefix="integrator-fleet-") as tmp:
        marker = Path(tmp) / "started"
        extra["integrator_started_marker"] = str(marker)
        code = run_playbook(playbook_argv("rollout", inventory, bundle, check=check, extra=extra), run)
        started = marker.exists()
    if code == 0:
        verb = "planned (nothing changed)" if check else "rolled out"
        return Result(data={"ok": True, "rolled_back": False}).say(f"fleet: {bundle.name} {verb}")
    result = Result(exit_code=1, data={"rolled_back": False, "ansible_exit": code})
    if check or not started:
        return result.say(f"fleet: {'plan' if check else 'preflight'} failed (ansible-playbook exit {code}); "
                          "nothing was changed")  # fmt: skip
    back = run_playbook(playbook_argv("rollback", inventory, bundle), run)
    result.data["rolled_back"] = back == 0
    if back == 0:
        return result.say(f"fleet: {bundle.name} failed; every app host is back on the previous release")
    return result.say("fleet: the rollout AND the rollback failed: see above, then `integrator fleet status`")


def simple(playbook: str, bundle: Path, inventory: Path, to: str | None = None) -> Result:
    """`fleet rollback|status|unlock`: one playbook, its exit code."""
    _inputs(bundle, inventory)
    extra = {"integrator_rollback_to": to} if to else {}
    code = run_playbook(playbook_argv(playbook, inventory, bundle, extra=extra), run_id())
    result = Result(exit_code=0 if code == 0 else 1, data={"ansible_exit": code})
    outcome = "done" if code == 0 else f"failed (ansible-playbook exit {code})"
    return result.say(f"fleet {playbook}: {outcome}")


def build_collection(out: Path) -> Result:
    """The collection as an offline tarball: ansible-galaxy collection install FILE -p DIR."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [tool("ansible-galaxy"), "collection", "build", str(COLLECTION), "--output-path", str(out)]
    argv.append("--force")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        why = proc.stderr.strip() or proc.stdout.strip()
        raise EnvironmentProblem(f"ansible-galaxy collection build failed: {why}")
    built = sorted(out.glob("integrator-fleet-*.tar.gz"))
    return Result(data={"tarball": str(built[-1])}).say(f"built {built[-1]}")
