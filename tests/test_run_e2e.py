"""`integrator run NAME -- CMD` end to end on one sandbox host (issue 10 item 2): a one-off
command with the serving release's venv, environment, credentials, user and sandboxing, its
exit code passed through. Traffic: none beyond the sandbox's own commands.
"""

from __future__ import annotations

import json

import pytest

from integrator.cli import main
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

NAME = "shop"
GREETING = "hello $HOME 100%"

# Prints what the command sees as one JSON object, then exits 3.
PROBE = (
    "import json, os, pwd, sys\n"
    "creds = os.environ['CREDENTIALS_DIRECTORY']\n"
    "try:\n"
    "    open('/opt/shop/written', 'w')\n"
    "    wrote = True\n"
    "except OSError:\n"
    "    wrote = False\n"
    "print(json.dumps({'secret': open(creds + '/api_key').read().strip(),\n"
    "    'greeting': os.environ['SHOP_GREETING'], 'user': pwd.getpwuid(os.getuid()).pw_name,\n"
    "    'python': sys.executable, 'args': sys.argv[1:], 'wrote_opt': wrote,\n"
    "    'no_new_privs': open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0]}))\n"
    "sys.exit(3)\n"
)


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    root = tmp_path_factory.mktemp("run")
    src = _new_service(NAME, root / NAME)
    toml = src / "service.toml"
    text = toml.read_text().replace("[secrets]\nfiles = []", '[secrets]\nfiles = ["api_key"]')
    env = f"[env]\nSHOP_GREETING = {json.dumps(GREETING)}\n\n[secrets]\nfiles"
    toml.write_text(text.replace("[secrets]\nfiles", env))
    bundle = _build(src, root / "dist")
    secret = root / "api_key"
    secret.write_text("s3cret-value\n")
    box = make_module_sandbox()
    ok(commands.deploy(DeployOptions(bundle, secrets={"api_key": secret}), SandboxTarget(box.name)))
    return box


def test_run_sees_the_services_secret_env_user_and_sandbox(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    hostile = ["$HOME", "two words", "; id", "%n"]
    rc = main(["run", NAME, "--host", box.name, "--", "python", "-c", PROBE, *hostile])
    out = capfd.readouterr().out
    assert rc == 3, out
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["secret"] == "s3cret-value"
    assert seen["greeting"] == GREETING
    assert seen["user"] == NAME
    assert seen["python"].startswith(f"/opt/{NAME}/releases/") and "/venv/bin/python" in seen["python"]
    assert seen["args"] == hostile
    assert seen["wrote_opt"] is False
    assert seen["no_new_privs"] == "1"
    # nothing left behind: the transient unit is collected
    units = sh(box, "systemctl", "list-units", "--all", "--no-legend", f"{NAME}-run-*").stdout.decode()
    assert units.strip() == ""


def test_run_refuses_a_service_not_deployed(box: Sandbox, capfd: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "nosuch", "--host", box.name, "--", "python", "-c", "print(1)"])
    err = capfd.readouterr().err
    assert rc == 2
    assert "nosuch: no deployed service" in err


def test_run_passes_a_zero_exit_through(box: Sandbox, capfd: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", NAME, "--host", box.name, "--", "/usr/bin/true"])
    capfd.readouterr()
    assert rc == 0


def test_run_output_reaches_the_terminal_and_the_journal(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    """No terminal here: the output comes back to us and each line is in the host's journal too,
    tagged NAME-run and matched by `journalctl -u` of the run's own unit (host/run_journal.py)."""
    code = "import sys; print('run-out-7f3a'); sys.stderr.write('run-err-7f3a\\n'); sys.exit(5)"
    rc = main(["run", NAME, "--host", box.name, "--", "python", "-c", code])
    out, err = capfd.readouterr()
    assert rc == 5 and "run-out-7f3a" in out and "run-err-7f3a" in err, out + err
    sh(box, "journalctl", "--sync")
    tagged = sh(box, "journalctl", "-t", f"{NAME}-run", "-o", "json", "--no-pager").stdout.decode()
    entries = [json.loads(line) for line in tagged.splitlines() if "7f3a" in line or "exited with 5" in line]
    messages = [e["MESSAGE"] for e in entries]
    assert "run-out-7f3a" in messages and "run-err-7f3a" in messages and "exited with 5" in messages
    unit = entries[0]["OBJECT_SYSTEMD_UNIT"]
    assert unit.startswith(f"{NAME}-run-") and all(e["_UID"] == "0" for e in entries)
    by_unit = sh(box, "journalctl", "-u", unit, "-o", "cat", "--no-pager").stdout.decode()
    assert "run-out-7f3a" in by_unit and "run-err-7f3a" in by_unit
