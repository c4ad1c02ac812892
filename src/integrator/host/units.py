"""systemd and nginx operations: reload, (re)start, check, and the journal of a failed start.

Restarts go through `systemctl restart NAME.service` only: with socket activation the socket
unit keeps listening (and queueing connections) while gunicorn restarts, so no request is lost.
"""

from __future__ import annotations

import time

from ..errors import CheckFailed
from ..layout import Layout
from .facts import unit_state
from .system import Proc, System


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
    """The last lines the service logged (since `since`, an epoch): the reason a start failed."""
    argv = ["journalctl", "-u", layout.service_unit, "-n", str(lines), "--no-pager", "-o", "cat"]
    if since is not None:
        argv += ["--since", f"@{int(since) - 1}"]
    return [line for line in system.run(argv, check=False).stdout.splitlines() if line.strip()]


def nginx_test(system: System) -> Proc:
    return system.run(["nginx", "-t", "-q"], check=False)


def nginx_check(system: System) -> None:
    proc = nginx_test(system)
    if not proc.ok:
        raise CheckFailed(f"nginx -t failed: {proc.output()}")


def nginx_reload(system: System) -> None:
    """Reload nginx, starting it if it is not running (a fresh host, or after a crash)."""
    if is_active(system, "nginx.service"):
        system.run(["systemctl", "reload", "nginx.service"])
    else:
        system.run(["systemctl", "enable", "--quiet", "--now", "nginx.service"])
