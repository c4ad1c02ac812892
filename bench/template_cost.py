"""The template's own per-request cost vs a bare Flask app, in one process (issue 11 goal 2).

    .venv/bin/python bench/template_cost.py               # 7 rounds x 5000 requests each: ~1 min

No server, no socket: the WSGI callable is called with the environ nginx's request would give
gunicorn (X-Forwarded-*, X-Request-ID), the response iterated, the request line written to
/dev/null through an unbuffered stdout as under systemd. Both apps come from `integrator new`:
  template   create_app() as generated (ProxyFix, the request log)
  bare       the same views without requestlog.init_app
Rounds interleave the two; medians of this process's CPU time per request (not wall time: on a
shared machine other work would count). Steadier than the full stack in bench/throughput.py.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from integrator.template.commands import new

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environ() -> dict[str, Any]:
    """GET /healthz as nginx forwards it (render/nginx_shared.py proxy_include + the site)."""
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "", "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr, "HTTP_HOST": "bench",
        "HTTP_X_REAL_IP": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_PORT": "443", "HTTP_X_FORWARDED_HOST": "bench",
        "HTTP_X_REQUEST_ID": "0123456789abcdef0123456789abcdef",
    }  # fmt: skip


def per_request_us(app: WSGI, count: int) -> float:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        return None

    started = time.process_time()  # this process's CPU time: other work on the machine does not count
    for _ in range(count):
        for _chunk in app(environ(), start_response):
            pass
    return (time.process_time() - started) / count * 1e6


def apps(work: Path) -> dict[str, WSGI]:
    if new("bench", work / "bench").exit_code != 0:
        raise SystemExit("integrator new failed")
    sys.path.insert(0, str(work / "bench" / "src"))
    import importlib

    from flask import Flask

    generated = importlib.import_module("bench")  # the generated package, not this directory
    views = importlib.import_module("bench.views")
    bare = Flask("bench")
    bare.config["GREETING"] = "hello"
    bare.register_blueprint(views.bp)
    return {"template": generated.create_app(), "bare": bare}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5000, help="per app and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-template-") as tmp:
        tested = apps(Path(tmp))
        real_stdout = sys.stdout
        devnull = os.open(os.devnull, os.O_WRONLY)  # unbuffered, as PYTHONUNBUFFERED=1 in the unit
        sys.stdout = io.TextIOWrapper(io.FileIO(devnull, "w"), write_through=True)
        try:
            for app in tested.values():  # warm-up
                per_request_us(app, 200)
            times: dict[str, list[float]] = {name: [] for name in tested}
            for _ in range(args.rounds):
                for name, app in tested.items():
                    times[name].append(per_request_us(app, args.requests))
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"medians of {args.rounds} rounds x {args.requests} requests, in-process WSGI calls, CPU time:")
    for name, us in med.items():
        print(f"  {name:<9} {us:7.1f} us per request")
    print(f"ratio template / bare: {med['template'] / med['bare']:.2f}x "
          f"(the template's own cost: {med['template'] - med['bare']:.1f} us per request)")  # fmt: skip
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
