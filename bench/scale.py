"""How deploys, memory and nginx reloads grow with the number of services on one host (issue 11
goal 3), and whether a deploy of one service pauses the others.

    .venv/bin/python bench/scale.py                 # 10 services, 3 rounds at 1, 5, 10: ~10 min quiet

One fresh sandbox host; services s01 ... s10 (the template, `integrator new`), deployed one after
the other. At 1, 5 and 10 services (medians of --rounds):
- **deploy of the n-th**: wall clock of `integrator deploy` of s<n>, a service the host has not
  seen (between rounds it is uninstalled again, so every round is a first deploy with n-1 others);
- **PSS per idle service**: gunicorn master + workers (/proc/PID/smaps_rollup; the master's PID
  from `integrator status`, so no unit name is assumed), median and largest over the services;
- **nginx reload**: `systemctl reload nginx` (nginx -t of every site, then the signal) until the
  master runs a full new set of workers;
- at 5 and 10, **the others' pause**: wrk (-t1 -c8, keep-alive HTTPS, GET /healthz) on s01 while
  s<n> is deployed in a new version (0.2.0, 0.3.0, ...): failed requests and the longest time
  between two good answers (bench/wrk_gaps.lua), from 1.5 s before the deploy to 1.5 s after;
  then the same load as long without a deploy ("no deploy"): the gaps the machine's load alone
  makes (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import wrk  # bench/wrk.py and bench/common.py, next to this file
from common import build, deploy, disposable_host, new_service, set_version, wait_serving

from integrator import sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget

CHECKPOINTS = (1, 5, 10)
WRK_PID = "/run/bench-wrk.pid"


def name(i: int) -> str:
    return f"s{i:02d}"


@dataclass
class Point:
    n: int
    deploy_s: list[float] = field(default_factory=list)
    pss_mb: list[float] = field(default_factory=list)  # one per service, total of its processes
    reload_s: list[float] = field(default_factory=list)
    pauses: list[wrk.WrkRun] = field(default_factory=list)
    pause_deploy_s: list[float] = field(default_factory=list)
    quiet: list[wrk.WrkRun] = field(default_factory=list)  # the same load, no deploy: the baseline


def build_all(work: Path, count: int, rounds: int) -> tuple[list[Path], dict[str, list[Path]]]:
    """s01..s<count> at 0.1.0; the checkpoint services' next versions for the pause rounds."""
    first: list[Path] = []
    upgrades: dict[str, list[Path]] = {}
    for i in range(1, count + 1):
        src = new_service(name(i), work / name(i))
        first.append(build(src, work / "dist" / name(i) / "0.1.0"))
        if i in CHECKPOINTS[1:] and i <= count:
            old, upgrades[name(i)] = "0.1.0", []
            for r in range(rounds):
                version = f"0.{r + 2}.0"
                set_version(src, name(i), old, version)
                upgrades[name(i)].append(build(src, work / "dist" / name(i) / version))
                old = version
    return first, upgrades


def timed_deploy(box: sandbox.Sandbox, pyz: Path) -> float:
    start = time.monotonic()
    deploy(box, pyz)
    return time.monotonic() - start


def uninstall(box: sandbox.Sandbox, service: str) -> None:
    result = commands.uninstall(service, SandboxTarget(box.name), purge=True)
    if result.exit_code != 0:
        raise SystemExit("uninstall failed:\n" + "\n".join(result.lines))


def pss_mb(box: sandbox.Sandbox, service: str) -> float:
    data = commands.status(service, SandboxTarget(box.name)).data
    pid = data["services"][0]["main_pid"]
    per_process = wrk.probe(box, "pss", str(pid))
    return sum(per_process.values()) / 1024  # type: ignore[attr-defined]


def paused_deploy(box: sandbox.Sandbox, pyz: Path, seconds_max: float) -> tuple[wrk.WrkRun, float]:
    """wrk on s01 around a deploy of `pyz`; wrk is stopped (SIGINT: it still reports) afterwards."""
    load = wrk.argv(f"https://{name(1)}:443/healthz", seconds_max, 8, 1, "gaps")
    shell = ["sh", "-c", f'echo $$ > {WRK_PID}; exec "$@"', "sh", *load]
    proc = subprocess.Popen(box.exec_argv(shell), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        took = timed_deploy(box, pyz)
        time.sleep(1.5)
        box.exec(["sh", "-c", f"kill -INT $(cat {WRK_PID})"])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {err.decode()}")
    return wrk.parse(out.decode()), took


def checkpoint(
    box: sandbox.Sandbox, n: int, first: list[Path], upgrades: dict[str, list[Path]], rounds: int
) -> Point:
    point = Point(n)
    for r in range(rounds):
        if r:
            uninstall(box, name(n))
        point.deploy_s.append(timed_deploy(box, first[n - 1]))
        print(f"  {n} services: deploy of {name(n)} {point.deploy_s[-1]:.2f} s", flush=True)
    point.pss_mb = [pss_mb(box, name(i)) for i in range(1, n + 1)]
    for _ in range(rounds):
        point.reload_s.append(float(wrk.probe(box, "reload")["new_workers_s"]))  # type: ignore[index]
    for pyz in upgrades.get(name(n), []):
        run, took = paused_deploy(box, pyz, seconds_max=120)
        point.pauses.append(run)
        point.pause_deploy_s.append(took)
        # The same load as long, nothing deployed: the gaps the machine's load alone makes.
        point.quiet.append(wrk.run(box, f"https://{name(1)}:443/healthz", took + 3, 8, 1, "gaps"))
        print(f"  {n} services: {name(1)} during a deploy of {name(n)}: {run.failed} failed, "
              f"{run.closed} closed connections, of {run.requests}; longest gap {run.gap_ms:.0f} ms",
              flush=True)  # fmt: skip
    return point


def report(points: list[Point]) -> None:
    med = statistics.median
    print("\nmedians (deploy, reload: of the rounds; PSS: over the services):")
    print("(others: s01 during the deploys of the n-th service: totals, and the median / longest gap)")
    print(f"{'services':>8} {'deploy n-th s':>13} {'PSS MB':>7} {'PSS max':>7} {'reload ms':>9} "
          f"{'others: failed':>14} {'closed':>6} {'gap ms':>9} {'no deploy':>9}")  # fmt: skip
    for p in points:
        failed = sum(r.failed for r in p.pauses) if p.pauses else "-"
        closed = sum(r.closed for r in p.pauses) if p.pauses else "-"
        gaps = [r.gap_ms for r in p.pauses]
        gap = f"{med(gaps):.0f} / {max(gaps):.0f}" if gaps else "-"
        base = [r.gap_ms for r in p.quiet]
        baseline = f"{med(base):.0f} / {max(base):.0f}" if base else "-"
        others = f"{failed!s:>14} {closed!s:>6} {gap:>9} {baseline:>9}"
        print(f"{p.n:>8} {med(p.deploy_s):>13.2f} {med(p.pss_mb):>7.1f} {max(p.pss_mb):>7.1f} "
              f"{med(p.reload_s) * 1000:>9.0f} {others}")  # fmt: skip
    one = points[0]
    print("\ngrowth vs 1 service (same run):")
    for p in points[1:]:
        print(f"  {p.n:>2} services: deploy {med(p.deploy_s) / med(one.deploy_s):.2f}x, "
              f"PSS per service {med(p.pss_mb) / med(one.pss_mb):.2f}x, "
              f"nginx reload {med(p.reload_s) / med(one.reload_s):.2f}x")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--services", type=int, default=10, choices=CHECKPOINTS[1:])
    args = parser.parse_args()
    started = time.monotonic()
    points = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        first, upgrades = build_all(Path(tmp), args.services, args.rounds)
        print(f"built {len(first) + sum(map(len, upgrades.values()))} bundles", flush=True)
        with disposable_host("bsc") as box:
            wrk.install(box, [name(i) for i in range(1, args.services + 1)])
            for n in range(1, args.services + 1):
                if n in CHECKPOINTS:
                    points.append(checkpoint(box, n, first, upgrades, args.rounds))
                else:
                    print(
                        f"  {n} services: deploy of {name(n)} {timed_deploy(box, first[n - 1]):.2f} s",
                        flush=True,
                    )
            print(f"serving: {name(1)} {wait_serving(box.address, name(1))}", flush=True)
            load = box.exec(["cat", "/proc/loadavg"]).stdout.decode().split()[:3]
    report(points)
    print(f"\nload average at the end: {' '.join(load)}; total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
