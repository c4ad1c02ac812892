"""Hardening lines every unit of ours shares (HOST-SIDE, pure): the web unit (systemd.py), the
certificate watch (tls_watch.py) and the transient units built from the web unit's, so they
cannot drift apart.
"""

from __future__ import annotations

# No capabilities and no way to gain any: the web unit's lines, and every other unit's that runs a
# program of ours (render/tls_watch.py), so the units cannot drift apart.
NO_PRIVILEGES = (
    "NoNewPrivileges=yes",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "RestrictSUIDSGID=yes",
    "RemoveIPC=yes",
    "KeyringMode=private",
    "LockPersonality=yes",
    "RestrictRealtime=yes",
    "RestrictNamespaces=yes",
)


# Kernel settings, modules, logs, cgroups, clock and host name out of reach: every unit of ours.
PROTECT_KERNEL = (
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
)
