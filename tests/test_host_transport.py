"""Targets, the host tool zip, and the JSON bridge back into a Result."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from integrator.host.transport import (
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


def test_host_tool_is_deterministic_and_host_only() -> None:
    data, digest = host_tool()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "__main__.py" in names and "integrator/host/deploy.py" in names and "integrator/cli.py" in names
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
