"""What nginx + TLS in front of gunicorn costs: GET /healthz throughput, side by side in one run.

One disposable host, the template service deployed by integrator. bench/httpload.py is copied
into the host and run there with the host's python3 (client, nginx and gunicorn share the same
2 cores, as in docs' earlier wrk measurements; ratios matter, absolute numbers do not):

  direct                  plain HTTP on gunicorn's unix socket (/run/NAME/gunicorn-a.sock)
  nginx+TLS keepalive     https://127.0.0.1 (Host: NAME): TLS, nginx, unix-socket upstream with keepalive
  nginx+TLS new conn      the same, a new TLS connection (full handshake) for every request

Each configuration runs PROCESSES x THREADS client connections for SECONDS; rounds interleaved
(order rotating), medians and ratios printed at the end.
Run as root: .venv/bin/python bench/proxy_overhead.py [--rounds 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpload  # bench/httpload.py and bench/common.py, next to this file
from common import build_versions, deploy, disposable_host, ratio, wait_serving

from integrator import sandbox

SERVICE = "bench"
CLIENT = "/root/httpload.py"


@dataclass(frozen=True)
class Config:
    name: str
    target: list[str]  # httpload.py arguments saying where to connect and how


def configs(name: str) -> list[Config]:
    https = ["--https", "127.0.0.1"]
    return [
        Config("direct (unix socket)", ["--unix", f"/run/{name}/gunicorn-a.sock"]),  # a first deploy's slot
        Config("nginx+TLS keepalive", https),
        Config("nginx+TLS new conn", [*https, "--close"]),
    ]


@dataclass(frozen=True)
class Run:
    config: str
    rps: float
    p50_ms: float
    p99_ms: float  # worst of the client processes
    failed: int


def load(box: sandbox.Sandbox, config: Config, args: argparse.Namespace, seconds: float) -> Run:
    """One bounded run of the client inside the host; its JSON summary."""
    argv = ["python3", CLIENT, *config.target, "--host", SERVICE, "--path", "/healthz"]
    argv += ["--processes", str(args.processes), "--threads", str(args.threads)]
    argv += ["--seconds", str(seconds), "--max-requests", str(args.max_requests)]
    proc = box.exec(argv, timeout=seconds + 60)
    s = httpload.Summary(**json.loads(proc.stdout))
    return Run(config.name, s.rps, s.p50_ms, s.p99_ms, s.failed)


COLUMNS = "{:<22} {:>9} {:>8} {:>8} {:>7} {:>9}"


def print_run(r: Run, direct_rps: float | None = None) -> None:
    vs = f"{r.rps / direct_rps:.2f}" if direct_rps else ""
    print(
        COLUMNS.format(r.config, f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", r.failed, vs),
        flush=True,
    )


def report(runs: list[Run]) -> None:
    names = list(dict.fromkeys(r.config for r in runs))
    medians = [
        Run(
            name,
            statistics.median(r.rps for r in runs if r.config == name),
            statistics.median(r.p50_ms for r in runs if r.config == name),
            statistics.median(r.p99_ms for r in runs if r.config == name),
            sum(r.failed for r in runs if r.config == name),
        )
        for name in names
    ]
    rounds = len(runs) // len(names)
    print(f"\nmedians of {rounds} rounds (failed: total):")
    print(COLUMNS.format("config", "req/s", "p50 ms", "p99 ms", "failed", "vs direct"))
    direct = medians[0]
    for m in medians:
        print_run(m, direct.rps)
    keep, new = medians[1], medians[2]
    print("\nratios of medians (same run):")
    print(f"  req/s, nginx+TLS keepalive / direct:           {ratio(keep.rps, direct.rps)}")
    print(f"  req/s, nginx+TLS new conn / nginx+TLS keepalive: {ratio(new.rps, keep.rps)}")
    print(f"  p99, nginx+TLS keepalive / direct:             {ratio(keep.p99_ms, direct.p99_ms)}")


def measure(box: sandbox.Sandbox, args: argparse.Namespace) -> list[Run]:
    box.copy_in(Path(httpload.__file__), CLIENT)
    order = configs(SERVICE)
    for config in order:  # warm-up: imports, TLS session cache, nginx workers; not counted
        load(box, config, args, 2.0)
    print(COLUMNS.format("config", "req/s", "p50 ms", "p99 ms", "failed", ""))
    runs: list[Run] = []
    for rnd in range(args.rounds):
        for config in order[rnd % len(order) :] + order[: rnd % len(order)]:
            runs.append(load(box, config, args, args.seconds))
            print_run(runs[-1])
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per run")
    parser.add_argument(
        "--processes", type=int, default=2, help="client processes (the GIL: one is not enough)"
    )
    parser.add_argument("--threads", type=int, default=4, help="connections per client process")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per connection and run")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        (pyz,) = build_versions(SERVICE, Path(tmp), 1)
        with disposable_host("bpx") as box:
            deploy(box, pyz)
            print(f"serving: {SERVICE} {wait_serving(box.address, SERVICE)}", flush=True)
            runs = measure(box, args)
    report(runs)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
