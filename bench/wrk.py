"""wrk (a C load generator: a Python client eats the cores it measures) inside a sandbox host.

This machine's /usr/bin/wrk (Debian's `wrk` package; scripts/setup.sh installs it) and its
LuaJIT library are copied into the host, which runs the same Debian release, so the load runs
on 127.0.0.1 inside the host, next to nginx and gunicorn, with the host's /etc/hosts naming the
services (the TLS handshake needs a name: integrator's catch-all refuses bare addresses).
Also here: the host-side probes (bench/hostprobe.py) that read CPU, PSS and reload times.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from integrator import sandbox

HERE = Path(__file__).parent
WRK = "/usr/local/bin/wrk"
PROBE = "/root/hostprobe.py"
SCRIPTS = {"summary": "/root/wrk_summary.lua", "gaps": "/root/wrk_gaps.lua"}


def parser(doc: str, seconds: float) -> argparse.ArgumentParser:
    """The options every wrk-driven bench takes: rounds, seconds per run, connections, threads."""
    parsed = argparse.ArgumentParser(description=doc.split("\n")[0])
    parsed.add_argument("--rounds", type=int, default=3)
    parsed.add_argument("--seconds", type=float, default=seconds, help="per run")
    parsed.add_argument("--connections", type=int, default=16, help="wrk -c (keep-alive)")
    parsed.add_argument("--threads", type=int, default=2, help="wrk -t")
    return parsed


def install(box: sandbox.Sandbox, names: list[str]) -> None:
    """wrk, its Lua scripts and hostprobe.py into the host; NAMES resolve to 127.0.0.1 there."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: apt-get install wrk (scripts/setup.sh does)")
    ldd = subprocess.run(["ldd", wrk], capture_output=True, text=True, check=True).stdout
    luajit = next(line.split()[2] for line in ldd.splitlines() if "libluajit" in line)
    box.copy_in(Path(wrk), WRK)
    box.copy_in(Path(luajit).resolve(), f"/usr/local/lib/{Path(luajit).name}")
    box.exec(["ldconfig"])
    for kind, dest in SCRIPTS.items():
        box.copy_in(HERE / f"wrk_{kind}.lua", dest)
    box.copy_in(HERE / "hostprobe.py", PROBE)
    hosts = box.exec(["cat", "/etc/hosts"]).stdout.decode()
    box.exec(["tee", "/etc/hosts"], input=(hosts + f"127.0.0.1 {' '.join(names)}\n").encode())


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    failed: int  # answers other than 2xx/3xx, timeouts, refused connections
    closed: int  # read/write errors: the server closed a keep-alive connection with a request
    # on it (an nginx reload retiring its old workers does; browsers retry such a GET)
    p50_ms: float
    p99_ms: float
    max_ms: float
    gap_ms: float  # longest time between two good answers (gaps script, -t1), else 0

    @property
    def errors(self) -> int:
        return self.failed + self.closed

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def argv(
    url: str, seconds: float, connections: int, threads: int, script: str, headers: tuple[str, ...] = ()
) -> list[str]:
    return [
        WRK,
        *(word for header in headers for word in ("-H", header)),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{math.ceil(seconds)}s",  # whole seconds: wrk refuses "42.3s"
        "-s",
        SCRIPTS[script],
        url,
    ]


def parse(stdout: str) -> WrkRun:
    line = next(line for line in reversed(stdout.splitlines()) if line.startswith("{"))
    d = json.loads(line)
    return WrkRun(
        d["requests"],
        d["duration_us"] / 1e6,
        d["status"] + d["timeout"] + d["connect"],
        d["read"] + d["write"],
        d["p50_us"] / 1e3,
        d["p99_us"] / 1e3,
        d["max_us"] / 1e3,
        d.get("gap_us", 0) / 1e3,
    )


def run(
    box: sandbox.Sandbox,
    url: str,
    seconds: float,
    connections: int = 16,
    threads: int = 2,
    script: str = "summary",
    headers: tuple[str, ...] = (),
) -> WrkRun:
    """One bounded wrk run inside the host (keep-alive connections, wrk's default), with
    `headers` ("Name: value") added to each request. URLs name their port: the host has no
    /etc/services to look `https` up in."""
    proc = box.exec(argv(url, seconds, connections, threads, script, headers), timeout=seconds + 60)
    return parse(proc.stdout.decode())


def probe(box: sandbox.Sandbox, *args: str) -> object:
    """bench/hostprobe.py inside the host; its JSON answer."""
    return json.loads(box.exec(["python3", PROBE, *args], timeout=60).stdout)
