"""systemd and nginx operations: reload, (re)start, check, and the journal of a failed start.

A release starts in a slot nginx does not route to (`start_slot`): the slot's socket unit
queues connections while its gunicorn boots, and the serving link is pointed at it only once it
answers; the other slot is stopped once nothing is connected to it (`wait_unused`, `stop_slot`,
host/drain.py). Which slot serves: the site and the link (`serving_slot`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from .. import slots
from ..errors import CheckFailed
from ..layout import Layout
from ..slots import Slot
from . import ports
from .facts import unit_state
from .system import Proc, System, proc_stats

NGINX = "nginx.service"
NGINX_ERROR_LOG = "/var/log/nginx/error.log"  # the stock error_log on Debian and RHEL
T = TypeVar("T")


def daemon_reload(system: System) -> None:
    system.run(["systemctl", "daemon-reload"])


def serving_slot(system: System, layout: Layout) -> Slot | None:
    """The slot (or the legacy pair) the site on disk routes to, through the serving link or
    (a site from before it) by naming a socket; None: no site."""
    try:
        text = system.path(layout.nginx_site).read_text(errors="replace")
    except OSError:
        return None
    link = str(layout.upstream_link)
    return slots.serving_slot(text, link, read_link(system, layout.upstream_link), layout.all_slots)


def read_link(system: System, path: PurePosixPath) -> str | None:
    """Where the symlink `path` points (None: no symlink there)."""
    try:
        return os.readlink(system.path(path))
    except OSError:
        return None


def socket_users(system: System, socket_path: PurePosixPath) -> int:
    """Connections to the listening unix socket `socket_path`, accepted or still queued: what
    nginx may still send requests on. Read from /proc/net/unix, where both carry the path."""
    try:
        table = system.path("/proc/net/unix").read_text(errors="replace")
    except OSError:
        return 0
    return count_socket_users(table, str(socket_path))


LISTENING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags


def count_socket_users(table: str, path: str) -> int:
    """Pure: the lines of /proc/net/unix on `path` that are not its listening socket."""
    count = 0
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) == 8 and fields[7] == path and not int(fields[3], 16) & LISTENING:
            count += 1
    return count


def wait_unused(system: System, socket_path: PurePosixPath, timeout: float) -> int:
    """Wait until nothing is connected to `socket_path`, up to `timeout` s; returns how many
    connections are left."""
    return _wait_while(lambda: socket_users(system, socket_path), timeout, 0.1)


def _wait_while(left: Callable[[], T], timeout: float, every: float) -> T:
    """Ask `left()` again every `every` s while it is not empty, up to `timeout` s; its last answer."""
    end = time.monotonic() + timeout
    now = left()
    while now and time.monotonic() < end:
        time.sleep(every)
        now = left()
    return now


def start_slot(system: System, slot: Slot) -> float:
    """Enable a slot that serves no one and start it afresh: gunicorn stopped, the socket
    restarted (its unit may have changed; it holds no waiting request), gunicorn started.
    Returns the start time, for the journal."""
    started = time.time()
    system.run(["systemctl", "enable", "--quiet", *slot.units])
    system.run(["systemctl", "stop", slot.service_unit], check=False)
    system.run(["systemctl", "restart", slot.socket_unit])
    system.run(["systemctl", "restart", slot.service_unit], check=False)  # health check decides
    return started


def ensure_started(system: System, slot: Slot) -> None:
    """Start a slot that should serve, leaving it alone if it runs (a restore)."""
    system.run(["systemctl", "enable", "--quiet", *slot.units], check=False)
    system.run(["systemctl", "start", slot.socket_unit, slot.service_unit], check=False)


def stop_slot(system: System, slot: Slot) -> None:
    """Stop and disable a slot: SIGTERM to gunicorn, which finishes its requests within its
    graceful_timeout, then the socket; a unit not loaded is no error."""
    system.run(["systemctl", "disable", "--now", "--quiet", *slot.units], check=False)


def stop_and_disable(system: System, layout: Layout) -> None:
    """Every slot and the certificate watch: a failed first deploy, uninstall."""
    for slot in layout.all_slots:
        stop_slot(system, slot)
    tls_watch(system, layout, on=False)


def tls_watch(system: System, layout: Layout, on: bool) -> None:
    """Enable and (re)start NAME-tls.path (render/tls_watch.py: a provided certificate), so it
    watches the paths just written; or stop and disable it, whether or not its file is still
    there (stop works on a unit loaded from a file already removed)."""
    if on:
        system.run(["systemctl", "enable", "--quiet", layout.tls_watch_unit])
        system.run(["systemctl", "restart", layout.tls_watch_unit])
        return
    system.run(["systemctl", "stop", layout.tls_watch_unit, layout.tls_reload_unit], check=False)
    system.run(["systemctl", "disable", "--quiet", layout.tls_watch_unit], check=False)


def is_active(system: System, unit: str) -> bool:
    return unit_state(system, unit).get("ActiveState") == "active"


def journal_tail(system: System, slot: Slot, since: float | None = None, lines: int = 20) -> list[str]:
    """What the slot's service logged since `since` (an epoch): the reason a start failed."""
    argv = ["journalctl", "-u", slot.service_unit, "-n", "400", "--no-pager", "-o", "cat"]
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
    """Reload nginx unless `nginx -t` fails; then return its output (nginx keeps the old config).
    A stopped nginx stays stopped: restoring and uninstalling put files back, they start nothing."""
    proc = nginx_test(system)
    if not proc.ok:
        return proc.output()
    if is_active(system, NGINX):
        nginx_reload(system)
    return None


def nginx_reload(system: System, timeout: float = 10.0) -> dict[str, str] | None:
    """Reload nginx and wait until the workers of the old configuration are gone; start nginx
    if it is not running (a fresh host, or after a crash) and then return the state it was
    found in, for `put_nginx_back`.

    `systemctl reload nginx` returns once the master got the signal. Until the old workers
    exit they still accept connections, and their config routes an unknown name to another
    service's default server: a health check then gets that service's 200 for a broken release.
    """
    nginx = unit_state(system, NGINX)  # one `systemctl show`: state and master pid
    if nginx.get("ActiveState") != "active":
        start_nginx(system, nginx)
        return nginx
    master = main_pid(nginx)
    old = child_pids(system, master) if master else set()
    log = system.path(NGINX_ERROR_LOG)
    offset = log.stat().st_size if log.is_file() else 0
    system.run(["systemctl", "reload", NGINX])
    end = time.monotonic() + timeout
    while master and time.monotonic() < end:
        current = child_pids(system, master)
        if current - old and not current & old:
            return None
        refused = _errors_since(log, offset)  # e.g. a port of the new config is taken
        if refused:
            raise CheckFailed(f"nginx kept its previous configuration: {_explain(system, refused)}")
        time.sleep(0.05)
    return None


def _errors_since(log: Path, offset: int) -> list[str]:
    """[emerg] lines nginx's master wrote to its error log after `offset`: a refused reload."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read(1 << 16).decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if "[emerg]" in line]


def _explain(system: System, logged: list[str]) -> str:
    proc = system.path("/proc")
    holders = {b.text: ports.port_holders(proc, b.port, b.ipv6) for b in ports.bind_errors(logged)}
    return start_failure(logged, holders)


def start_nginx(system: System, found: dict[str, str]) -> None:
    """Start a stopped nginx. If it does not start, put it back as `found` and raise naming the
    cause from nginx's own error and, for a port in use, the process that holds it."""
    since = time.time()
    if system.run(["systemctl", "enable", "--quiet", "--now", NGINX], check=False).ok:
        return
    argv = ["journalctl", "-u", NGINX, "--since", f"@{int(since) - 1}", "--no-pager", "-o", "cat"]
    logged = system.run(argv, check=False).stdout.splitlines()
    put_nginx_back(system, found)
    raise CheckFailed(f"{NGINX} did not start: {_explain(system, logged)}; nginx was left "
                      f"{found.get('ActiveState', 'inactive')}, as it was found")  # fmt: skip


def start_failure(logged: list[str], holders: dict[str, list[ports.Holder]]) -> str:
    """The cause in nginx's words: failed binds with who holds each port (`holders`, by bind
    error), else its first [emerg]/[alert] line, else its last line."""
    binds = ports.bind_errors(logged)
    if binds:
        return "; ".join(f"{b.text}: {ports.describe_holders(b.port, holders.get(b.text, []))}"
                         for b in binds)  # fmt: skip
    errors = [line.strip() for line in logged if "[emerg]" in line or "[alert]" in line]
    lines = errors or [line.strip() for line in logged if line.strip()]
    return lines[0] if errors else lines[-1] if lines else f"no message (see `journalctl -u {NGINX}`)"


def put_nginx_back(system: System, found: dict[str, str]) -> None:
    """Stop nginx again (and disable it, if it was) after this deploy started it."""
    system.run(["systemctl", "stop", NGINX], check=False)
    system.run(["systemctl", "reset-failed", NGINX], check=False)
    if found.get("UnitFileState") == "disabled":
        system.run(["systemctl", "disable", "--quiet", NGINX], check=False)


def main_pid(state: dict[str, str]) -> int | None:
    """MainPID from `unit_state`; systemd reports 0 when the unit has no main process."""
    pid = state.get("MainPID", "0")
    return int(pid) if pid.isdigit() and pid != "0" else None


def nginx_workers(system: System) -> set[int]:
    """The nginx master's children now: the workers a reload retires."""
    master = main_pid(unit_state(system, NGINX))
    return child_pids(system, master) if master else set()


def wait_gone(system: System, pids: set[int], timeout: float) -> set[int]:
    """Wait until none of `pids` runs any more, up to `timeout` s; returns those still there
    (a PID once gone stays gone: it may be reused by another process)."""
    running = set(pids)

    def still_running() -> set[int]:
        running.difference_update([p for p in running if not system.path(f"/proc/{p}").exists()])
        return set(running)

    return _wait_while(still_running, timeout, 0.05)


def child_pids(system: System, parent: int) -> set[int]:
    """PIDs whose parent is `parent` (field 4 of /proc/PID/stat)."""
    return {pid for pid, fields in proc_stats(system.path("/proc")) if fields[1] == str(parent)}
