"""NAME-tls.path and NAME-tls.service: nginx reloads when a provided certificate changes.

`[tls] mode = "provided"` names files someone else renews (certbot, any ACME client, an
operator's copy). Without this, nginx would keep serving the old certificate until the next
deploy. Self-signed and local-CA certificates are renewed by a deploy, which reloads nginx
itself: they get no watch.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ..layout import Layout
from ..spec import ServiceSpec
from .common import header
from .hardening import NO_PRIVILEGES, PROTECT_KERNEL

SETTLE_S = 1  # seconds between the first change and the reload


def watched(spec: ServiceSpec) -> bool:
    """Whether the service has the watch units: one place for the deploy and the renderer."""
    return spec.tls.mode == "provided"


def watched_paths(spec: ServiceSpec) -> list[str]:
    """The certificate, the key and the directory of each (the same one twice is harmless)."""
    files = [str(spec.tls.cert), str(spec.tls.key)]
    return [*files, *(str(PurePosixPath(f).parent) for f in files)]


def watch_path_unit(spec: ServiceSpec, layout: Layout) -> str:
    """NAME-tls.path: starts NAME-tls.service when the certificate or the key changes."""
    lines = header(layout.tls_watch_unit_paths[0])
    lines += [
        "",
        "[Unit]",
        f"Description={spec.name}: reload nginx when its provided TLS certificate or key changes",
        "",
        "[Path]",
        "# Each file (written and closed: for a symbolic link, the file it points to) and each",
        "# directory (a file or a new symbolic link renamed into it: certbot re-points the links",
        "# in live/ that way; the file a link pointed to does not change then).",
        *(f"PathChanged={path}" for path in watched_paths(spec)),
        f"Unit={layout.tls_reload_unit}",
        "",
        "[Install]",
        "WantedBy=paths.target",
    ]
    return "\n".join(lines) + "\n"


def reload_service_unit(spec: ServiceSpec, layout: Layout) -> str:
    """NAME-tls.service: one `systemctl try-reload-or-restart nginx.service`, nothing more."""
    lines = header(
        layout.tls_watch_unit_paths[1],
        f"Review the hardening: systemd-analyze security {layout.tls_reload_unit}",
    )
    lines += [
        "",
        "[Unit]",
        f"Description={spec.name}: reload nginx for a changed TLS certificate",
        f"# Started by {layout.tls_watch_unit}. nginx checks the new pair itself: a certificate",
        "# whose key has not been replaced yet fails the reload and nginx keeps serving the old",
        "# pair; the key's own change starts this again.",
        "",
        "[Service]",
        "Type=oneshot",
        f"# A renewal replaces two files: changes within {SETTLE_S} s of the first are all in one reload.",
        f"ExecStartPre=/bin/sleep {SETTLE_S}",
        "# Reloads nginx if it runs (a stopped nginx stays stopped). systemd's private socket",
        "# accepts root alone, hence root, with every other privilege taken away below.",
        "ExecStart=/bin/systemctl try-reload-or-restart nginx.service",
        "",
        *_sandbox(),
    ]
    return "\n".join(lines) + "\n"


def _sandbox() -> list[str]:
    return [
        "# Nothing writable, no network, no devices, no capabilities: it only talks to systemd",
        "# over /run/systemd/private.",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "DevicePolicy=closed",
        "PrivateNetwork=yes",
        "PrivateIPC=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "IPAddressDeny=any",
        *PROTECT_KERNEL,
        "ProtectProc=invisible",
        "ProcSubset=pid",
        *NO_PRIVILEGES,
        "MemoryDenyWriteExecute=yes",
        "UMask=0077",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
    ]
