"""A small bounded HTTP load client: threads (and processes) each keeping one connection alive.

Standard library only (Python >= 3.9), so the same file runs here, imported by the benchmarks,
and inside a sandbox host as a script (`python3 httpload.py ...`, JSON on stdout).

Every loop is bounded twice: it stops at a deadline and after a number of requests, whatever
the caller does. A request that fails on a *reused* keep-alive connection before any response
byte arrives (the server closed the idle connection, e.g. an nginx reload retiring workers) is
retried once on a new connection, as browsers and urllib3 do for GET; it is counted as retried.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

Connect = Callable[[], http.client.HTTPConnection]
CLOSED_BY_PEER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
TIMEOUT_S = 10.0


@dataclass
class Sample:
    done: float  # time.monotonic() when the response (or the error) came
    latency: float
    ok: bool  # 2xx/3xx
    retried: bool = False


@dataclass
class ThreadLog:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a unix socket (gunicorn's own socket, as nginx connects to it)."""

    def __init__(self, path: str, timeout: float = TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class SniConnection(http.client.HTTPSConnection):
    """HTTPS to an address, with `server_name` in the handshake: integrator's nginx refuses a
    handshake without one of its sites' names (the bare address gets nothing)."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=TIMEOUT_S, context=context)
        self.server_name, self.context = server_name, context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=self.server_name)


def https_connect(address: str, server_name: str, port: int = 443) -> Connect:
    """HTTPS without verification (self-signed certificates on disposable hosts)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return lambda: SniConnection(address, port, server_name, ctx)


def unix_connect(path: str) -> Connect:
    return lambda: UnixHTTPConnection(path)


def _get(conn: http.client.HTTPConnection, path: str, host: str, keepalive: bool) -> int:
    headers = {"Host": host} if keepalive else {"Host": host, "Connection": "close"}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    if resp.will_close or not keepalive:
        conn.close()
    return resp.status


def _one(
    conn: http.client.HTTPConnection, path: str, host: str, keepalive: bool, reused: bool
) -> tuple[Optional[int], Optional[str], bool]:
    """(status or None, error kind or None, retried)."""
    for attempt in (0, 1):
        try:
            return _get(conn, path, host, keepalive), None, attempt == 1
        except CLOSED_BY_PEER as exc:
            conn.close()
            if not reused or attempt == 1:
                return None, type(exc).__name__, attempt == 1
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return None, type(exc).__name__, attempt == 1
    raise AssertionError("unreachable")


def worker(
    connect: Connect,
    path: str,
    host: str,
    stop_at: float,
    max_requests: int,
    stop: Optional[threading.Event] = None,
    keepalive: bool = True,
) -> ThreadLog:
    """GET `path` in a loop until `stop_at` (monotonic), `max_requests`, or `stop` is set."""
    log = ThreadLog()
    conn = connect()
    served = 0  # requests answered on the current connection
    while len(log.samples) < max_requests and time.monotonic() < stop_at:
        if stop is not None and stop.is_set():
            break
        start = time.monotonic()
        status, error, retried = _one(conn, path, host, keepalive, reused=served > 0 and keepalive)
        now = time.monotonic()
        ok = status is not None and 200 <= status < 400
        log.samples.append(Sample(now, now - start, ok, retried))
        if not ok:
            log.errors[error or str(status)] += 1
        served = served + 1 if status is not None and conn.sock is not None else 0
        if error is not None:
            time.sleep(0.001)  # a refused connect fails at once: do not spin
    conn.close()
    return log


def run_threads(
    connect: Connect,
    path: str,
    host: str,
    threads: int,
    seconds: float,
    max_requests: int,
    stop: Optional[threading.Event] = None,
    keepalive: bool = True,
) -> list[ThreadLog]:
    """`threads` workers side by side; returns when all have stopped (by `seconds` at the latest)."""
    stop_at = time.monotonic() + seconds
    logs: list[ThreadLog] = [ThreadLog() for _ in range(threads)]

    def run(i: int) -> None:
        logs[i] = worker(connect, path, host, stop_at, max_requests, stop, keepalive)

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds + 2 * TIMEOUT_S)
    return logs


@dataclass
class Summary:
    sent: int
    ok: int
    failed: int
    retried: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]


def summarize(logs: list[ThreadLog], seconds: float) -> Summary:
    """Counts, req/s and latency percentiles of successful requests."""
    samples = [s for log in logs for s in log.samples]
    latencies = sorted(s.latency for s in samples if s.ok)
    errors: Counter[str] = Counter()
    for log in logs:
        errors.update(log.errors)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    ok = len(latencies)
    retried = sum(s.retried for s in samples)
    return Summary(
        len(samples), ok, len(samples) - ok, retried, ok / seconds, pct(0.5), pct(0.99), dict(errors)
    )


def merge(parts: list[Summary]) -> Summary:
    """Processes side by side: counts add up; percentiles are the worst process's (an upper bound)."""
    errors: Counter[str] = Counter()
    for p in parts:
        errors.update(p.errors)
    return Summary(
        sum(p.sent for p in parts),
        sum(p.ok for p in parts),
        sum(p.failed for p in parts),
        sum(p.retried for p in parts),
        sum(p.rps for p in parts),
        max(p.p50_ms for p in parts),
        max(p.p99_ms for p in parts),
        dict(errors),
    )


def _process(args: argparse.Namespace) -> Summary:
    connect = unix_connect(args.unix) if args.unix else https_connect(args.https, args.host, args.port)
    logs = run_threads(
        connect, args.path, args.host, args.threads, args.seconds, args.max_requests, None, not args.close
    )
    return summarize(logs, args.seconds)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", help="path of a unix socket (plain HTTP)")
    where.add_argument("--https", help="address to connect to with TLS (127.0.0.1 or a sandbox)")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--host", required=True, help="Host header")
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--threads", type=int, default=4, help="per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=200_000, help="per thread")
    parser.add_argument("--close", action="store_true", help="a new connection for every request")
    args = parser.parse_args(argv)
    if not args.https or args.https.startswith(("127.", "10.")):
        if args.processes == 1:
            result = _process(args)
        else:
            with multiprocessing.get_context("fork").Pool(args.processes) as pool:
                result = merge(pool.map(_process, [args] * args.processes))
        json.dump(asdict(result), sys.stdout)
        print()
        return 0
    parser.error("only 127.0.0.0/8 and sandbox (10.x) addresses")
    return 2


if __name__ == "__main__":
    sys.exit(main())
