"""A fleet's load balancer: requests/s through it with 1, 2 and 3 app hosts, and the longest pause
seen by clients while `integrator fleet deploy` rolls a release across the hosts.

Runs against a fleet that is already deployed (an inventory as in docs/fleet.md, the service's
bundle staged by a fleet run): the pool is narrowed by the bundle's own `lb` verb on the LB host
(the other app hosts marked `down`), over ssh as the inventory says, and put back at the end.
Load: N keep-alive HTTPS threads from this machine to the LB (Host and SNI: the service's name),
bounded in time and count (bench/httpload.py). Ratios come from this one run.

Run as root: .venv/bin/python bench/fleet_lb.py -i INVENTORY --bundle DEPLOYED.pyz
             [--next OTHER.pyz] [--seconds 10] [--threads 8]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import threading
import time
from pathlib import Path

import httpload  # bench/httpload.py, next to this file
import yaml  # type: ignore[import-untyped]  # comes with ansible-core
from common import ratio

from integrator.cli import main as integrator

MAX_PER_THREAD = 200_000


def hosts(inventory: Path, group: str) -> list[tuple[str, str, str]]:
    """(name, address, ssh options) of each host of `group`."""
    data = yaml.safe_load(inventory.read_text())
    members = data["all"]["children"][group]["hosts"]
    return [(n, h.get("ansible_host", n), h.get("ansible_ssh_common_args", "")) for n, h in members.items()]


def pool(lb: tuple[str, str, str], apps: list[str], up: int, bundle: Path) -> None:
    """The first `up` app hosts in the LB's pool, the rest drained."""
    staged = f"/var/lib/integrator-fleet/{bundle.name}"
    argv = ["python3", staged, "lb", *(f"--backend={a}" for a in apps), *(f"--down={a}" for a in apps[up:])]
    ssh = ["ssh", *shlex.split(lb[2]), f"root@{lb[1]}", shlex.join(argv)]
    subprocess.run(ssh, check=True, stdout=subprocess.DEVNULL)


def throughput(address: str, name: str, threads: int, seconds: float) -> httpload.Summary:
    logs = httpload.run_threads(
        httpload.https_connect(address, name), "/", name, threads, seconds, MAX_PER_THREAD
    )
    return httpload.summarize(logs, seconds)


def longest_pause(address: str, name: str, threads: int, roll: list[str]) -> tuple[float, httpload.Summary]:
    """Load while `integrator ROLL...` runs; the longest gap between two answered requests."""
    stop = threading.Event()
    out: list[list[httpload.ThreadLog]] = []
    started = time.monotonic()
    loader = threading.Thread(
        target=lambda: out.append(
            httpload.run_threads(httpload.https_connect(address, name), "/", name, threads, 900, 10**7, stop)
        )
    )
    loader.start()
    try:
        time.sleep(2)
        code = integrator(roll)
    finally:
        stop.set()
        loader.join()
    assert code == 0, f"integrator {' '.join(roll)}: exit {code}"
    done = sorted(s.done for log in out[0] for s in log.samples if s.ok)
    gaps = [b - a for a, b in zip(done, done[1:])]
    return max(gaps, default=0.0), httpload.summarize(out[0], time.monotonic() - started)


def run(args: argparse.Namespace) -> None:
    lb = hosts(args.inventory, "integrator_lb")[0]
    apps = [a for _, a, _ in hosts(args.inventory, "integrator_app")]
    name = args.bundle.name.split("-")[0]
    rps: dict[int, float] = {}
    try:
        for up in range(1, len(apps) + 1):
            pool(lb, apps, up, args.bundle)
            summary = throughput(lb[1], name, args.threads, args.seconds)
            rps[up] = summary.rps
            print(f"{up} app host(s): {summary.rps:8.0f} req/s, p50 {summary.p50_ms:.1f} ms, "
                  f"p99 {summary.p99_ms:.1f} ms, failed {summary.failed}", flush=True)  # fmt: skip
    finally:
        pool(lb, apps, len(apps), args.bundle)
    for up in rps:
        print(f"scaling {up} vs 1 host(s): {ratio(rps[up], rps[1])}")
    if args.next is not None:
        roll = ["fleet", "deploy", str(args.next), "-i", str(args.inventory)]
        pause, summary = longest_pause(lb[1], name, args.threads, roll)
        print(f"rolling deploy of {args.next.name}: longest pause {pause * 1000:.0f} ms, "
              f"{summary.ok} answered, {summary.failed} failed")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, required=True, help="the release the fleet serves")
    parser.add_argument("--next", type=Path, help="a release to roll out under load (pause measured)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=8)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
