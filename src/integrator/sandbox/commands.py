"""`integrator sandbox VERB`: the functions the CLI forwards to, each returning a Result.

Progress of slow steps (the first base build takes ~30 s) goes to stderr as it happens; the
Result carries the outcome, so `--json` output stays one object on stdout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..errors import UsageError
from ..result import Result
from . import lifecycle
from .paths import host_names

REMOTE = re.compile(r"^([a-z0-9][a-z0-9-]{0,10}):(.*)$")  # NAME:PATH, NAME as in paths.NAME_RE


def _progress(message: str) -> None:
    print(f"integrator: {message}", file=sys.stderr, flush=True)


def _terminal_env() -> dict[str, str]:
    return {"TERM": os.environ.get("TERM", "dumb")}


def create_cmd(name: str) -> Result:
    """Build the base if needed, boot host NAME and wait until it runs."""
    started = time.monotonic()
    sandbox = lifecycle.create(name, progress=_progress)
    seconds = round(time.monotonic() - started, 2)
    data = {"name": name, "address": sandbox.address, "leader": sandbox.leader(), "seconds": seconds}
    return Result(data=data).say(f"{name} is running at {sandbox.address} ({seconds} s)")


def exec_cmd(name: str, argv: Sequence[str]) -> Result:
    """Run a command inside NAME with this terminal's stdio; its exit code becomes ours."""
    if not argv:
        raise UsageError("give the command after --, e.g.: integrator sandbox exec h1 -- systemctl status")
    sandbox = lifecycle.get(name)
    rc = subprocess.call(sandbox.exec_argv(argv, _terminal_env()))
    return Result(data={"name": name, "argv": list(argv), "exit_code": rc}, exit_code=rc)


def split_remote(arg: str) -> tuple[str | None, str]:
    """("h1", "/root/x") for "h1:/root/x"; (None, arg) for a path on this machine."""
    match = REMOTE.match(arg)
    return (match.group(1), match.group(2)) if match else (None, arg)


def copy_cmd(src: str, dest: str) -> Result:
    """Copy SRC to DEST; exactly one of them is NAME:/path inside host NAME (DEST is the full target path)."""
    (src_host, src_path), (dest_host, dest_path) = split_remote(src), split_remote(dest)
    if (src_host is None) == (dest_host is None):
        raise UsageError(
            "copy needs exactly one side as NAME:/path, e.g. copy ./app h1:/opt/app "
            "or copy h1:/etc/nginx ./nginx (write ./a:b for a local path with a colon)"
        )
    if dest_host is not None:
        lifecycle.get(dest_host).copy_in(Path(src_path), dest_path)
    else:
        assert src_host is not None
        lifecycle.get(src_host).copy_out(src_path, Path(dest_path))
    return Result(data={"src": src, "dest": dest}).say(f"copied {src} -> {dest}")


def list_cmd() -> Result:
    """Every host: name, state, address, PID of its systemd as seen from here."""
    infos = lifecycle.list_sandboxes()
    result = Result(data={"sandboxes": [asdict(i) for i in infos]})
    if not infos:
        return result.say("no sandboxes")
    result.say(f"{'NAME':<12} {'STATE':<8} {'ADDRESS':<15} LEADER")
    for i in infos:
        result.say(f"{i.name:<12} {i.state:<8} {i.address or '-':<15} {i.leader or '-'}")
    return result


def shell_cmd(name: str) -> Result:
    """Replace this process with an interactive login shell inside NAME."""
    argv = lifecycle.get(name).exec_argv(["/bin/bash", "-l"], _terminal_env())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)


def reboot_cmd(name: str) -> Result:
    """Reboot NAME inside (same root filesystem) and wait until it runs again."""
    sandbox = lifecycle.get(name)
    started = time.monotonic()
    sandbox.reboot()
    seconds = round(time.monotonic() - started, 2)
    return Result(data={"name": name, "address": sandbox.address, "seconds": seconds}).say(
        f"{name} rebooted and is running again at {sandbox.address} ({seconds} s)"
    )


def destroy_cmd(name: str | None, *, all_hosts: bool = False) -> Result:
    """Power off and remove NAME (or every host with --all); nothing of it stays behind."""
    if all_hosts == (name is not None):
        raise UsageError("destroy takes either a NAME or --all")
    names = host_names() if all_hosts else [name] if name else []
    result = Result(data={"destroyed": names})
    for each in names:
        lifecycle.destroy(each)
        result.say(f"destroyed {each}")
    return result if names else result.say("no sandboxes")
