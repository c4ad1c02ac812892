"""One JSON line per request on stdout.

Written straight to stdout, not through the `logging` module: building a LogRecord (caller
lookup, thread and process names) for every request cost more than the rest of this module
together (bench/throughput.py measures the template against a bare Flask app).

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
import re
import sys
import threading
import time
import uuid

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

# An incoming X-Request-ID (e.g. nginx's $request_id) is kept only if it looks harmless.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# One encoder for every line: json.dumps with separators= builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode
_lock = threading.Lock()


def write_line(text: str) -> None:
    """`text` as one line on the *current* sys.stdout.

    Looking stdout up at each line (not once at start-up) lets gunicorn, systemd and pytest's
    output capture all receive the lines; the lock keeps threads from interleaving them.
    """
    with _lock:
        out = sys.stdout
        out.write(text + "\n")
        out.flush()


def init_app(app: Flask) -> None:
    """Trust nginx's forwarded headers and log every request the app answers."""
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0
    )
    app.before_request(_start)
    app.after_request(_log)


def _start() -> None:
    g.request_started = time.perf_counter()
    incoming = request.environ.get("HTTP_X_REQUEST_ID", "")  # cheaper than request.headers
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
    write_line(_encode(line))
    return response
