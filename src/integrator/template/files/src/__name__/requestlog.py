"""One JSON line per request on stdout.

Written straight to stdout, not through the `logging` module: building a LogRecord (caller
lookup, thread and process names) for every request cost more than the rest of this module
together (bench/throughput.py measures the template against a bare Flask app).

Under systemd, stdout goes to journald, which keeps it with the unit name and release,
so no log files need rotating: `integrator logs {{name}}`, or on the host
`journalctl -u "{{name}}-*.service" -o cat` (both slots' units).

The app runs behind nginx, which sets Host itself (one of the service's own names, with the
port unless it is 443) and passes the client's address and the scheme in X-Forwarded-For (one
address, never a list a client started) and X-Forwarded-Proto. `ProxyFix` takes those two from
exactly one proxy; Host needs no fixing. Trusting more (a second hop, X-Forwarded-Prefix) would
let a client choose what `request.remote_addr` or `url_for(..., _external=True)` say.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_host, get_path_info

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# An incoming X-Request-ID (e.g. nginx's $request_id) is kept only if it looks harmless.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Where views find the request's id: request.environ[REQUEST_ID_KEY].
REQUEST_ID_KEY = "{{name}}.request_id"
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
        RequestLog(app.wsgi_app), x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0
    )


class RequestLog:
    """WSGI layer inside ProxyFix (it sees the client address and host nginx gave): takes or
    makes the request's id (`request.environ[REQUEST_ID_KEY]` in views), returns it as
    X-Request-ID, and writes the line once the app has built its response.

    A WSGI layer, not Flask's before/after_request hooks: per request those cost more (hook
    dispatch, context-local lookups) than the line itself (bench/template_cost.py).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        environ[REQUEST_ID_KEY] = request_id
        status = 0

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            status = int(code.split(" ", 1)[0])
            headers.append(("X-Request-ID", request_id))
            return start_response(code, headers, exc_info)

        body = self.app(environ, start)  # Flask has built the whole response by now
        line = {
            "method": environ.get("REQUEST_METHOD", ""),
            "path": get_path_info(environ),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "host": get_host(environ),
            "request_id": request_id,
        }
        write_line(_encode(line))
        return body
