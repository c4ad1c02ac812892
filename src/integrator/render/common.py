"""Values that more than one rendered file must agree on, defined once.

The systemd socket, gunicorn and nginx each see one side of the same connection; if their
numbers drift (backlog, idle timeouts, stop timeouts) requests fail only under load or during
restarts, where nobody looks. Everything per-service comes from the spec or the layout; the
few fixed choices live here.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..errors import UsageError
from ..spec import ServiceSpec

# Pending connections the listening socket holds while gunicorn (re)starts. A unix-socket
# connect() fails at once when the backlog is full (nginx answers 502), it never waits.
SOCKET_BACKLOG = 1024

# A fleet's load balancer closes idle connections to an app host's nginx after this.
UPSTREAM_IDLE_S = 60
# nginx closes idle connections to gunicorn after SLOT_IDLE_S, and any after SLOT_CONN_LIFE_S of
# use (once its request is answered): a slot that stopped serving has none left a few seconds
# after the switch, so it is stopped with nothing nginx could still send to (host/drain.py).
# gunicorn keeps them a little longer, so nginx never reuses a connection gunicorn is closing.
SLOT_IDLE_S = 2
SLOT_CONN_LIFE_S = 1
GUNICORN_KEEPALIVE_S = SLOT_IDLE_S + 5

# Slack on top of gunicorn's own timeouts: systemd's stop timeout and nginx's read timeout
# must both be longer than gunicorn's, so gunicorn is the one that decides.
MARGIN_S = 5

HSTS_MAX_AGE_S = 63072000  # two years, the Mozilla guideline's minimum

RELEASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # matched whole


def stop_timeout(spec: ServiceSpec) -> int:
    """systemd's TimeoutStopSec=: above graceful_timeout, so workers finish before SIGKILL."""
    return spec.server.graceful_timeout + MARGIN_S


def proxy_timeout(spec: ServiceSpec) -> int:
    """nginx's proxy read/send timeouts: above gunicorn's timeout, so nginx never cuts first."""
    return spec.server.timeout + MARGIN_S


def check_release_id(release_id: str) -> str:
    """A release id becomes a path in units and configs: no spaces, `%`, `$` or slashes.
    `render --release`, `rollback --to` and every rendering check it here."""
    if not RELEASE_ID_RE.fullmatch(release_id):
        raise UsageError(
            f"release id {release_id[:70]!r} is not valid: use letters, digits, '.', '_', '+', '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return release_id


def header(title: PurePosixPath | str, *notes: str, from_spec: bool = True) -> list[str]:
    """The comment every rendered file starts with: what it is and that it is generated."""
    fix = "change service.toml, not this file" if from_spec else "local edits are lost"
    lines = [f"# {title}", f"# Rendered by integrator and rewritten on every deploy: {fix}."]
    return lines + [f"# {note}" for note in notes]
