"""Targets, the host tool zip, and the JSON bridge back into a Result."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from integrator.host.stager import ancestors
from integrator.layout import REMOTE_ROOT
from integrator.targets.remote import Upload, stage_plan, stager_argv, stager_source
from integrator.targets.transport import (
    LocalTarget,
    RemoteError,
    SandboxTarget,
    SshTarget,
    host_tool,
    result_from_json,
    target_from_args,
)


def test_target_from_args() -> None:
    assert isinstance(target_from_args(), LocalTarget)
    assert target_from_args(host="h1") == SandboxTarget("h1")
    assert target_from_args(ssh="ops@web1") == SshTarget("ops@web1")


def test_ssh_quotes_every_argument_and_uses_sudo_unless_root() -> None:
    argv = SshTarget("ops@web1")._remote_argv(["journalctl", "--since", "1 hour ago"])
    assert argv[-1] == "sudo -n journalctl --since '1 hour ago'"
    assert SshTarget("root@web1")._remote_argv(["true"])[-1] == "true"


def test_one_command_shares_one_ssh_connection_through_a_private_socket() -> None:
    """The master and the clients of one command's ssh calls, as argv (targets/ssh.py)."""
    from integrator.targets.ssh import client_options, master_argv, one_connection

    master = master_argv(["-F", "cfg", "-o", "BatchMode=yes"], "root@web1", "/run/user/0/integrator-ssh-x/m")
    assert master == [
        "ssh", "-F", "cfg", "-o", "BatchMode=yes", "-M", "-N",
        "-o", "ControlPath=/run/user/0/integrator-ssh-x/m", "-o", "ControlPersist=no", "root@web1",
    ]  # fmt: skip
    assert client_options("/d/m") == ["-o", "ControlPath=/d/m", "-o", "ControlMaster=no"]
    local, sandbox = LocalTarget(), SandboxTarget("h1")
    for target in (local, sandbox):  # nothing to share: the same target
        with one_connection(target) as same:
            assert same is target
    with one_connection(SshTarget("root@web1", config="cfg")) as shared:
        assert shared == SshTarget("root@web1", config="cfg") and shared.mux is not None  # not started yet


def test_host_tool_is_deterministic_and_host_only() -> None:
    data, digest = host_tool()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert (
        "__main__.py" in names
        and "integrator/host/deploy.py" in names
        and "integrator/catalog_host.py" in names
    )
    assert "integrator/cli.py" not in names and not any(n.startswith("integrator/targets/") for n in names)
    assert not any(n.startswith(("integrator/sandbox/", "integrator/template/")) for n in names)
    assert not any("__pycache__" in n for n in names)
    host_tool.cache_clear()
    assert host_tool()[1] == digest


def test_host_tool_runs_with_a_bare_python(tmp_path: Path) -> None:
    tool = tmp_path / "tool.pyz"
    tool.write_bytes(host_tool()[0])
    out = subprocess.run(
        [sys.executable, "-I", str(tool), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("integrator ")


def test_result_from_json_carries_lines_and_exit_code() -> None:
    payload = {"ok": False, "exit_code": 1, "lines": ["deploy failed", "  | boom"], "release": "r1"}
    result = result_from_json(json.dumps(payload), "")
    assert result.exit_code == 1 and result.lines == ["deploy failed", "  | boom"]
    assert result.data == {"release": "r1"}


def test_remote_user_error_keeps_its_exit_code() -> None:
    with pytest.raises(RemoteError) as err:
        result_from_json(json.dumps({"ok": False, "exit_code": 2, "error": "no such bundle"}), "")
    assert err.value.exit_code == 2 and "no such bundle" in str(err.value)


def test_garbage_from_the_host_is_reported() -> None:
    with pytest.raises(Exception, match="did not answer with JSON: Traceback"):
        result_from_json("", "Traceback (most recent call last): ...")


# --- the stager's command line (host/remote.py, pure) ---------------------------------------------


def test_the_stager_runs_as_one_isolated_python_with_the_plan_as_one_argument() -> None:
    upload = Upload("shop.pyz", Path("/x/shop.pyz"), "ab" * 32, 10)
    plan = stage_plan("cd" * 32, 5, False, [upload], ["--json", "deploy", ("", "shop.pyz"), ("db=", "s-1")])
    argv = stager_argv(plan)
    assert argv[:4] == ["python3", "-I", "-c", stager_source()]
    assert len(argv) == 5 and json.loads(argv[4]) == {
        "root": "/var/cache/integrator-host",
        "tool": {
            "name": "integrator-host-" + "cd" * 8 + ".pyz",
            "sha256": "cd" * 32,
            "size": 5,
            "sent": False,
        },
        "uploads": [{"name": "shop.pyz", "sha256": "ab" * 32, "size": 10}],
        "argv": ["--json", "deploy", ["", "shop.pyz"], ["db=", "s-1"]],
    }
    assert PurePosixPath("/var/cache/integrator-host") == REMOTE_ROOT
    assert "/tmp" not in argv[4]


def test_the_chain_checked_starts_at_the_root_directory() -> None:
    assert ancestors("/var/cache/integrator-host") == ["/", "/var", "/var/cache"]


def test_the_ssh_command_line_quotes_the_stager_whole() -> None:
    plan = stage_plan("cd" * 32, 5, True, [], ["--json", "status"])
    line = SshTarget("ops@web1")._remote_argv(stager_argv(plan))[-1]
    assert line.startswith("sudo -n python3 -I -c '")
    assert shlex.split(line) == ["sudo", "-n", *stager_argv(plan)]


@pytest.mark.parametrize(("tty", "flags"), [(True, ["-t"]), (False, [])])
def test_run_over_ssh_gets_a_terminal_only_with_one(tty: bool, flags: list[str]) -> None:
    argv = SshTarget("root@web1").interactive_argv(["python3", "-c", "x y"], tty)
    assert argv[: argv.index("root@web1")] == ["ssh", "-o", "BatchMode=yes", *flags]
    assert "-n" not in argv  # our stdin reaches the command
    assert argv[-1] == "python3 -c 'x y'"
