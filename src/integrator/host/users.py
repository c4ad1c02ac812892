"""The service's system user: no shell, no home, no password; created once, removed on uninstall."""

from __future__ import annotations

from ..layout import Layout
from .facts import user_exists
from .system import System

NOLOGIN_CANDIDATES = ("/usr/sbin/nologin", "/sbin/nologin")


def nologin_shell(system: System) -> str:
    """Debian has /usr/sbin/nologin, RHEL /sbin/nologin (same file on merged-/usr hosts)."""
    for path in NOLOGIN_CANDIDATES:
        if system.path(path).exists():
            return path
    return "/bin/false"


def ensure_user(system: System, layout: Layout) -> bool:
    """Create the system user (and its group) if missing; True if this call created it."""
    if user_exists(layout.user):
        return False
    system.run(
        [
            "useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", nologin_shell(system),
            "--comment", f"integrator service {layout.name}", layout.user,
        ]
    )  # fmt: skip
    return True


def remove_user(system: System, layout: Layout) -> bool:
    """Remove the user and its group; True if there was one."""
    if not user_exists(layout.user):
        return False
    system.run(["userdel", layout.user])
    system.run(["groupdel", layout.user], check=False)  # gone already when userdel removed it
    return True
