"""One JSON line per request on stdout.

Under systemd, stdout goes to journald, which keeps it with the unit name and release,
so no log files need rotating: `integrator logs {{name}}`, or on the host
`journalctl -u "{{name}}-*.service" -o cat` (both slots' units).

The app runs behind nginx, so the client address, scheme, host name and port arrive in
X-Forwarded-* headers. nginx sets each of them itself (one address, never a list a client
started; only the service's own names) and drops the rest; `ProxyFix` trusts exactly those,
from exactly one proxy. Trusting more (a second hop, X-Forwarded-Prefix) would let a client
choose what `request.remote_addr` or `url_for(..., _external=True)` say.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

logger = logging.getLogger("{{name}}.requests")

# An incoming X-Request-ID (e.g. nginx's $request_id) is kept only if it looks harmless.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class StdoutHandler(logging.Handler):
    """Write each record as one line to the *current* sys.stdout.

    Looking stdout up at each record (not once at start-up) lets gunicorn, systemd and
    pytest's output capture all receive the lines; the handler's lock keeps threads
    from interleaving them.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def init_app(app: Flask) -> None:
    """Trust nginx's forwarded headers and log every request the app answers."""
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0
    )
    if not any(isinstance(h, StdoutHandler) for h in logger.handlers):
        logger.addHandler(StdoutHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False  # once is enough: not again through the root logger
    app.before_request(_start)
    app.after_request(_log)


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex


def _log(response: Response) -> Response:
    started = g.get("request_started", time.perf_counter())
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    line = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "remote_addr": request.remote_addr,
        "host": request.host,
        "request_id": request_id,
    }
    logger.info(json.dumps(line, separators=(",", ":")))
    return response
