"""Disposable Debian hosts booted with a real systemd (systemd-nspawn), for trying deploys.

Each host boots from a copy-on-write overlay of a cached base root filesystem, gets its own
cgroups and a veth link with a private /30, and is reachable from this machine at its address.
Needs root; `ensure_prerequisites()` says what to install otherwise.
"""

from __future__ import annotations

from .host import Sandbox, SandboxInfo
from .lifecycle import create, destroy, get, list_sandboxes
from .prereq import ensure_prerequisites
from .rootfs import ensure_base

__all__ = [
    "Sandbox",
    "SandboxInfo",
    "create",
    "destroy",
    "ensure_base",
    "ensure_prerequisites",
    "get",
    "list_sandboxes",
]
