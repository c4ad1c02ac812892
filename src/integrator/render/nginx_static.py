"""[static]: URL prefixes nginx answers from directories of the serving release, never through gunicorn.

The files are the release's own (payload/static/DIR, unpacked root-owned 0644 from the verified
bundle), reached through `current`, so they switch with the release that serves: after the
health check, and back on a rollback. Below the directory no symlink is followed.
"""

from __future__ import annotations

from ..layout import Layout
from ..spec import ServiceSpec
from .nginx_text import block

CACHE = "1h"  # `expires`: Cache-Control max-age and Expires; not fingerprinted names, so not longer


def static_locations(spec: ServiceSpec, layout: Layout) -> list[str]:
    """One `location ^~ PREFIX` per [static] entry (none without [static])."""
    lines: list[str] = []
    for prefix, directory in spec.static.paths:
        lines += [
            "",
            f'# [static] "{prefix}" = "{directory}": files of the serving release, sent by nginx, cached',
            f"# by clients for {CACHE}; GET and HEAD only; no symlink below the directory is followed.",
            *block(f"location = {prefix}", ["return 404;  # no directory listing"]),
            *block(
                f"location ^~ {prefix}",
                [
                    f"alias {layout.static_dir(directory)}/;",
                    "disable_symlinks on from=$document_root;",
                    f"expires {CACHE};",
                    *block("limit_except GET", ["deny all;"]),
                ],
            ),
        ]
    return lines
