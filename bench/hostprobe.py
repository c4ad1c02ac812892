"""Measurements taken inside a sandbox host (copied in, run with the host's python3; stdlib only).

    python3 hostprobe.py cpu UNIT...          CPU seconds each unit's processes used so far
    python3 hostprobe.py pss PID              PSS in kB of PID and its children (smaps_rollup)
    python3 hostprobe.py unit PID             PID's systemd unit: name, argv, cwd, user, environment
    python3 hostprobe.py reload               seconds for `systemctl reload nginx` until new workers run

JSON on stdout. Processes and their units are read from /proc, so nothing here
depends on how integrator names its units: callers pass PIDs (from `status`) or unit names
they made themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def unit_of(pid: str) -> str:
    """The systemd unit a process runs in (the last part of its cgroup path, v1 or v2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith(("0::", "1:name=systemd:")) or ":name=systemd:" in line:
            return line.rsplit("/", 1)[1]
    return ""


def cpu(units: list[str]) -> dict[str, float]:
    """CPU seconds (user + system, all threads) of the live processes of each unit. Read from
    /proc, not the unit's cgroup: the hosts may run cgroup v1, where only some units have
    CPU accounting. Processes that exited in between are missed (workers, nginx: none do)."""
    out = dict.fromkeys(units, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            unit = unit_of(entry.name)
            if unit in out:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                out[unit] += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            continue
    return out


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def pss(pid: int) -> dict[str, int]:
    """PSS of the process and its direct children (gunicorn: master + workers), in kB."""
    out = {}
    for p in [pid, *children(pid)]:
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out[str(p)] = int(line.split()[1])
    return out


def unit(pid: int) -> dict[str, object]:
    """What a twin of PID's service needs (a bench starts one on TCP): from its cgroup's unit."""
    name = unit_of(str(pid))
    props = ["ExecStart", "WorkingDirectory", "User", "Environment"]
    argv = ["systemctl", "show", name, *(f"--property={p}" for p in props)]
    shown = dict(
        line.split("=", 1)
        for line in subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()
    )
    exec_argv = shown["ExecStart"].split("argv[]=", 1)[1].split(" ;", 1)[0].split()
    return {
        "unit": name,
        "argv": exec_argv,
        "cwd": shown["WorkingDirectory"],
        "user": shown["User"],
        "environment": shown["Environment"].split(),
    }


def nginx_workers() -> set[int]:
    master = int(Path("/run/nginx.pid").read_text())
    return set(children(master))


def reload() -> dict[str, float]:
    """From `systemctl reload nginx` (nginx -t of every site, then the signal) until the master
    runs a complete new set of workers; then until the old ones are gone too, so that what runs
    next (a load window) does not see them close their connections."""
    before = nginx_workers()
    start = time.monotonic()
    subprocess.run(["systemctl", "reload", "nginx"], check=True)
    returned = time.monotonic() - start
    deadline = start + 30
    while time.monotonic() < deadline:
        now = nginx_workers()
        if len(now - before) >= len(before):
            break
        time.sleep(0.002)
    new_workers = time.monotonic() - start
    while time.monotonic() < deadline and nginx_workers() & before:
        time.sleep(0.01)
    return {"systemctl_s": returned, "new_workers_s": new_workers, "old_gone_s": time.monotonic() - start}


def main(argv: list[str]) -> int:
    what, args = argv[0], argv[1:]
    result: object
    if what == "cpu":
        result = cpu(args)
    elif what == "pss":
        result = pss(int(args[0]))
    elif what == "unit":
        result = unit(int(args[0]))
    else:
        result = reload()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
