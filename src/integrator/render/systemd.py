"""The systemd units of a slot (slots.py): NAME-a.socket (owns the listening socket) and
NAME-a.service (gunicorn), the same for b; both slots are rendered by these same functions.

The hardening follows the measured reference unit, with a real system user instead of
DynamicUser= because the release files under /opt/NAME are root-owned and the deployer
creates the user. `systemd-analyze security` (252) scores it 0.4 with network "none"; the
reference's 0.2 needs PrivateUsers=, which fails where user namespaces are disabled. Every
group of lines carries a comment saying why, for the sysadmin who reads the unit on a host.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..layout import Layout
from ..slots import Slot
from ..spec import ServiceSpec
from .common import SOCKET_BACKLOG, header, stop_timeout
from .hardening import NO_PRIVILEGES, PROTECT_KERNEL
from .unit_text import env_line
from .unit_text import text as _text

# journald's per-unit rate limit: 10,000 lines a second, about ten times the requests a second
# this stack serves on two cores (bench/README.md), so one JSON line per request is never dropped.
JOURNAL_INTERVAL_S = 30
JOURNAL_BURST = 300_000


def service_unit(spec: ServiceSpec, layout: Layout, release_id: str, slot: Slot) -> str:
    """NAME-SLOT.service: gunicorn from release `release_id`, on the socket of NAME-SLOT.socket."""
    review = f"Review the hardening: systemd-analyze security {slot.service_unit}"
    lines = header(slot.service_unit_path, review)
    lines += ["", *_unit_section(spec, slot), "", "[Service]"]
    for block in (
        _process(spec, layout, release_id),
        _environment(spec, layout, release_id),
        *confinement(spec, layout, release_id),
    ):
        if block:
            lines += [*block, ""]
    lines += ["[Install]", "WantedBy=multi-user.target"]
    return "\n".join(lines) + "\n"


def confinement(spec: ServiceSpec, layout: Layout, release_id: str) -> list[list[str]]:
    """The [Service] blocks that confine every process of the service: credentials, limits,
    user, file system, privileges, network, system calls. Declared once: NAME-SLOT.service and the
    transient units of `run` (render/transient.py) both read them."""
    return [
        _secrets(spec, layout),
        _limits(spec),
        _identity(layout),
        _filesystem(layout, release_id),
        _privileges(spec),
        _network(spec),
        _syscalls(),
    ]


def environment(spec: ServiceSpec, layout: Layout, release_id: str) -> list[tuple[str, str]]:
    """The variables every process of the service gets: the release's venv first on PATH, logs
    unbuffered, no .pyc writes into the read-only release, HOME the state directory (the user's
    own is /nonexistent: an app that keeps its data under ~, as XDG's ~/.local/share, keeps it
    where it survives deploys and rollbacks), then [env] from service.toml (which may set HOME)."""
    return venv_environment(spec, layout.venv(release_id), layout.app_state_dir)


def venv_environment(spec: ServiceSpec, venv: PurePosixPath, home: PurePosixPath) -> list[tuple[str, str]]:
    """`environment` with `venv` first on PATH (the workers' and timers': `current`'s)."""
    own = {key for key, _ in spec.env.vars}
    state = [] if "HOME" in own else [("HOME", str(home))]
    return [
        ("PATH", f"{venv}/bin:/usr/bin:/bin"),
        ("PYTHONUNBUFFERED", "1"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        *state,
        *spec.env.vars,
    ]


def socket_unit(spec: ServiceSpec, layout: Layout, slot: Slot) -> str:
    """NAME-SLOT.socket: created by systemd as root, so it outlives gunicorn restarts."""
    lines = header(slot.socket_unit_path)
    lines += [
        "",
        "[Unit]",
        f"Description={_text(spec.name)}: gunicorn listening socket of slot {slot.name} "
        "(nginx connects here while this slot serves)",
        "",
        "[Socket]",
        "# Created by systemd before gunicorn starts and kept across restarts and crashes:",
        "# requests wait here instead of failing while a new gunicorn comes up.",
        f"ListenStream={slot.socket_path}",
        "# root-owned, group of the nginx workers, 0660: only nginx (and root) may connect,",
        "# and the app cannot replace or chown it (so it needs no @chown system call).",
        "SocketUser=root",
        f"SocketGroup={layout.profile.nginx_user}",
        "SocketMode=0660",
        f"# {layout.runtime_dir} itself: traversable by nginx; the socket's own mode decides access.",
        "DirectoryMode=0755",
        "# Connections queued during a restart; when full, a unix-socket connect fails at once",
        "# (nginx answers 502). The kernel caps it at net.core.somaxconn (4096 since Linux 5.4, 128 before).",
        f"Backlog={SOCKET_BACKLOG}",
        "",
        "[Install]",
        "WantedBy=sockets.target",
    ]
    return "\n".join(lines) + "\n"


# --- [Unit] and process control ------------------------------------------------------------


def _unit_section(spec: ServiceSpec, slot: Slot) -> list[str]:
    about = (
        f"{spec.name}: {spec.service.description}" if spec.service.description else f"{spec.name} (gunicorn)"
    )
    return [
        "[Unit]",
        f"Description={_text(about)}",
        f"# The listening socket belongs to {slot.socket_unit}; starting the service starts it too.",
        "# After network.target: at shutdown the service stops before the network goes down.",
        f"Requires={slot.socket_unit}",
        f"After={slot.socket_unit} network.target",
    ]


def _process(spec: ServiceSpec, layout: Layout, release_id: str) -> list[str]:
    gunicorn = layout.venv(release_id) / "bin" / "gunicorn"
    return [
        "# gunicorn reports readiness itself (sd_notify): `active` means it accepts requests.",
        "Type=notify",
        "NotifyAccess=main",
        f"# This release's own venv and config, never {layout.current}: a rollback only changes this unit.",
        f"ExecStart={gunicorn} --config {layout.gunicorn_conf(release_id)} {_app_word(spec)}",
        f"WorkingDirectory={layout.app_dir(release_id)}",
        "# HUP: gunicorn starts new workers and retires the old ones gracefully (same release, same code).",
        "ExecReload=/bin/kill -s HUP $MAINPID",
        "# Stop: SIGTERM to the gunicorn master only; it lets workers finish their requests within",
        f"# graceful_timeout ({spec.server.graceful_timeout}s). "
        "Anything left after TimeoutStopSec= is killed.",
        "KillMode=mixed",
        f"TimeoutStopSec={stop_timeout(spec)}",
        "# After a crash, start again; the socket keeps queueing requests meanwhile.",
        "Restart=on-failure",
        "RestartSec=1",
    ]


def _app_word(spec: ServiceSpec) -> str:
    """One ExecStart= word: a factory's keyword arguments hold double quotes (ENTRY_RE: no space,
    single quote, backslash, `%` or `$`), which systemd keeps whole only inside single quotes."""
    return f"'{spec.wsgi_app}'" if "=" in spec.wsgi_app else spec.wsgi_app


# --- what the process sees ------------------------------------------------------------------


def _environment(spec: ServiceSpec, layout: Layout, release_id: str) -> list[str]:
    return environment_lines(spec, layout, environment(spec, layout, release_id))


def environment_lines(spec: ServiceSpec, layout: Layout, base: list[tuple[str, str]]) -> list[str]:
    """The environment block of every unit of the service (NAME.service, workers, timers)."""
    own = len(spec.env.vars)
    lines = [
        "# The release's venv first on PATH; logs reach the journal unbuffered; no .pyc writes",
        "# into the read-only release; HOME is the state directory (data kept under ~ survives",
        "# deploys and rollbacks). The journal tags lines with the service name.",
        *(env_line(key, value) for key, value in base[: len(base) - own]),
        f"SyslogIdentifier={layout.journal_tag}",
        "# journald's default per-unit limit (10,000 lines per 30 s) drops request lines above ~330/s:",
        f"# {JOURNAL_BURST // JOURNAL_INTERVAL_S:,}/s here, still a cap on a runaway loop (systemd >= 240).",
        f"LogRateLimitIntervalSec={JOURNAL_INTERVAL_S}s",
        f"LogRateLimitBurst={JOURNAL_BURST}",
    ]
    if own:
        lines.append("# [env] from service.toml")
        lines += [env_line(key, value) for key, value in base[len(base) - own :]]
    return lines


def _secrets(spec: ServiceSpec, layout: Layout) -> list[str]:
    if not spec.secrets.files:
        return []
    return [
        f"# Secrets from {layout.credentials_dir} (root only). The app reads them as files in",
        "# $CREDENTIALS_DIRECTORY; never environment variables, which child processes and crash dumps see.",
        *(f"LoadCredential={name}:{layout.credentials_dir / name}" for name in spec.secrets.files),
    ]


def _limits(spec: ServiceSpec) -> list[str]:
    limits = [
        ("MemoryMax", spec.limits.memory_max),
        ("CPUQuota", spec.limits.cpu_quota),
        ("TasksMax", str(spec.limits.tasks_max)),
    ]
    lines = [
        "# [limits] from service.toml: a leak or a runaway loop hits this service's ceiling, not the host's."
    ]
    off = [f"{key}=" for key, value in limits if not value]
    if off:
        lines.append(f"# Switched off there: {' '.join(off)}")
    return lines + [f"{key}={value}" for key, value in limits if value]


def _identity(layout: Layout) -> list[str]:
    return [
        f"# A system user made by the deployer. The release under {layout.releases} is root-owned,",
        "# so the app can read its code but never change it.",
        f"User={layout.user}",
        f"Group={layout.user}",
        f"# {layout.app_state_dir}: the app's only writable place, private to it.",
        f"StateDirectory={layout.name}",
        "StateDirectoryMode=0700",
        "UMask=0077",
        f"# No RuntimeDirectory=: systemd would delete {layout.runtime_dir} and the socket in it",
        "# on every stop of the service.",
    ]


# --- sandboxing -----------------------------------------------------------------------------


def _filesystem(layout: Layout, release_id: str) -> list[str]:
    return [
        "# File system: read-only everywhere except the state directory; no /home; private /tmp,",
        "# /dev and IPC; kernel settings, modules, logs, cgroups, clock and host name out of reach.",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "DevicePolicy=closed",
        "PrivateMounts=yes",
        "PrivateIPC=yes",
        *PROTECT_KERNEL,
        "# Other processes are invisible in /proc, and so are /proc/meminfo & co (psutil needs those).",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "# Programs and shared libraries run only from the service's venvs (the release's venv links",
        "# to one) and the system's own directories.",
        "NoExecPaths=/",
        f"ExecPaths={layout.venvs} /usr/bin /usr/lib /usr/lib64 /lib /lib64",
    ]


def _privileges(spec: ServiceSpec) -> list[str]:
    mdwe = "yes" if spec.security.memory_deny_write_execute else "no"
    return [
        "# No capabilities, no way to gain any (setuid, new privileges), no namespaces, no realtime.",
        "# No PrivateUsers=: it fails to start where user namespaces are disabled (common on RHEL).",
        *NO_PRIVILEGES,
        "# No writable+executable memory: CPython and gunicorn are fine; JITs and old-style cffi",
        "# callbacks are not ([security] memory_deny_write_execute in service.toml).",
        f"MemoryDenyWriteExecute={mdwe}",
    ]


def _network(spec: ServiceSpec) -> list[str]:
    if spec.security.network == "none":
        return [
            "# Network: none. Requests arrive on the inherited unix socket; the app has no network",
            "# of its own (private namespace, unix sockets only, every IP address denied).",
            "PrivateNetwork=yes",
            "RestrictAddressFamilies=AF_UNIX",
            "IPAddressDeny=any",
        ]
    return [
        "# Network: outbound. The app may connect to other hosts (databases, APIs) over IPv4/IPv6;",
        "# raw, packet and netlink sockets stay forbidden.",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ]


def _syscalls() -> list[str]:
    return [
        "# System calls: the first filter line makes it an allow-list (@system-service), the second",
        "# removes privileged and resource-changing calls from it. Denied calls fail with EPERM.",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
    ]
