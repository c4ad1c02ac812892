"""The service's system user: no shell, no home, no password; created once, and removed on
uninstall only when the ownership record says integrator created it (never a system account)."""

from __future__ import annotations

from ..layout import Layout
from .owned import GROUP, USER, Owned, owns_account, user_comment
from .system import System

NOLOGIN_CANDIDATES = ("/usr/sbin/nologin", "/sbin/nologin")


def nologin_shell(system: System) -> str:
    """Debian has /usr/sbin/nologin, RHEL /sbin/nologin (same file on merged-/usr hosts)."""
    for path in NOLOGIN_CANDIDATES:
        if system.path(path).exists():
            return path
    return "/bin/false"


def ensure_user(system: System, layout: Layout) -> bool:
    """Create the system user (and its group) if missing; True if this call created it.
    An existing user is never taken over: the deploy checked it is integrator's first."""
    if system.user(layout.user) is not None:
        return False
    system.run(
        [
            "useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", nologin_shell(system),
            "--comment", user_comment(layout.name), layout.user,
        ]
    )  # fmt: skip
    return True


def remove_user(system: System, layout: Layout, owned: Owned) -> list[str]:
    """Remove the user and its group if integrator created them (record and live ids agree);
    returns what it removed."""
    removed = []
    user = system.user(layout.user)
    if user is not None and owns_account(owned, USER, user):
        system.run(["userdel", layout.user])
        removed.append(f"user {layout.user}")
    group = system.group(layout.user)  # userdel removes a user's own group on most hosts
    if group is not None and owns_account(owned, GROUP, group):
        system.run(["groupdel", layout.user], check=False)
        removed.append(f"group {layout.user}")
    return removed
