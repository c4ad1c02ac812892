"""systemd and nginx operations: reload, (re)start, check, and the journal of a failed start.

Restarts go through `systemctl restart NAME.service` only: with socket activation the socket
unit keeps listening (and queueing connections) while gunicorn restarts, so no request is lost.
"""

from __future__ import annotations

import re
import time

from ..errors import CheckFailed
from ..layout import Layout
from .facts import unit_state
from .system import Proc, System, proc_stats


def daemon_reload(system: System) -> None:
    system.run(["systemctl", "daemon-reload"])


def start_service(system: System, layout: Layout, socket_changed: bool) -> float:
    """Enable both units and (re)start the service; returns the start time for the journal.

    A changed socket unit needs the socket itself restarted, which only works with the
    service stopped (it holds the listening fd).
    """
    started = time.time()
    system.run(["systemctl", "enable", "--quiet", layout.socket_unit, layout.service_unit])
    if socket_changed:
        system.run(["systemctl", "stop", layout.service_unit], check=False)
        system.run(["systemctl", "restart", layout.socket_unit])
    else:
        system.run(["systemctl", "start", layout.socket_unit])
    system.run(["systemctl", "restart", layout.service_unit], check=False)  # health check decides
    return started


def stop_and_disable(system: System, layout: Layout) -> None:
    system.run(
        ["systemctl", "disable", "--now", "--quiet", layout.service_unit, layout.socket_unit], check=False
    )


def is_active(system: System, unit: str) -> bool:
    return unit_state(system, unit).get("ActiveState") == "active"


def journal_tail(system: System, layout: Layout, since: float | None = None, lines: int = 20) -> list[str]:
    """What the service logged since `since` (an epoch): the reason a start failed."""
    argv = ["journalctl", "-u", layout.service_unit, "-n", "400", "--no-pager", "-o", "cat"]
    if since is not None:
        argv += ["--since", f"@{int(since) - 1}"]
    logged = [line for line in system.run(argv, check=False).stdout.splitlines() if line.strip()]
    return pick_journal_lines(logged, lines)


ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)?(Error|Exception|Exit)\b.*")


def pick_journal_lines(lines: list[str], limit: int = 20) -> list[str]:
    """The last `limit` lines, preceded by the first Python traceback when the tail lacks it.

    A crash-looping gunicorn repeats boot and shutdown messages; the tail alone then shows
    "Worker failed to boot" without the exception that says why.
    """
    tail = lines[-limit:]
    start = next((i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line), None)
    if start is None:
        return tail
    end = next((j for j in range(start + 1, len(lines)) if ERROR_LINE.match(lines[j])), None)
    if end is None:
        return tail
    block = lines[start : end + 1][-12:]
    if set(block) <= set(tail):
        return tail
    return [*block, "...", *tail]


def nginx_test(system: System) -> Proc:
    return system.run(["nginx", "-t", "-q"], check=False)


def nginx_check(system: System) -> None:
    proc = nginx_test(system)
    if not proc.ok:
        raise CheckFailed(f"nginx -t failed: {proc.output()}")


def reload_nginx_if_valid(system: System) -> str | None:
    """Reload nginx unless `nginx -t` fails; then return its output (nginx keeps the old config)."""
    proc = nginx_test(system)
    if not proc.ok:
        return proc.output()
    nginx_reload(system)
    return None


def nginx_reload(system: System, timeout: float = 10.0) -> None:
    """Reload nginx and wait until the workers of the old configuration are gone; start nginx
    if it is not running (a fresh host, or after a crash).

    `systemctl reload nginx` returns once the master got the signal. Until the old workers
    exit they still accept connections, and their config routes an unknown name to another
    service's default server: a health check then gets that service's 200 for a broken release.
    """
    nginx = unit_state(system, "nginx.service")  # one `systemctl show`: state and master pid
    if nginx.get("ActiveState") != "active":
        system.run(["systemctl", "enable", "--quiet", "--now", "nginx.service"])
        return
    master = main_pid(nginx)
    old = child_pids(system, master) if master else set()
    system.run(["systemctl", "reload", "nginx.service"])
    end = time.monotonic() + timeout
    while master and time.monotonic() < end:
        current = child_pids(system, master)
        if current - old and not current & old:
            return
        time.sleep(0.05)


def main_pid(state: dict[str, str]) -> int | None:
    """MainPID from `unit_state`; systemd reports 0 when the unit has no main process."""
    pid = state.get("MainPID", "0")
    return int(pid) if pid.isdigit() and pid != "0" else None


def child_pids(system: System, parent: int) -> set[int]:
    """PIDs whose parent is `parent` (field 4 of /proc/PID/stat)."""
    return {pid for pid, fields in proc_stats(system.path("/proc")) if fields[1] == str(parent)}
