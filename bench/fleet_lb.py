"""A fleet's load balancer: requests/s through it with 1, 2 and 3 app hosts, and the longest pause
seen by clients while `integrator fleet deploy` rolls a release across the hosts.

Two kinds of request, printed side by side:
- `/`, the template's page: a few ms of CPU per request. All the sandbox hosts, the LB and the
  load client share this machine's 2 cores, so an app host added brings no CPU: flat.
- `/io`, a request that waits IO_MS on I/O (a database, another service) and uses no CPU, on app
  hosts that serve SLOTS requests at a time (workers = 2, threads = 1). There the app hosts'
  capacity is the limit, not the shared CPU, and each host added should add its share: the
  scaling the LB gives on separate machines.

`--make-fleet` builds what it measures: four fresh sandbox hosts (`fleetXXXXXX`: one LB, three
app hosts with sshd, the LB reaching them over private links as tests/test_fleet_e2e.py does),
a service with `/io`, v1 rolled out with `integrator fleet deploy`; all destroyed afterwards.
Or give a deployed fleet: `-i INVENTORY --bundle DEPLOYED.pyz` (its service must answer `/io`
to measure it; `--paths /` otherwise). The pool is narrowed by the bundle's own `lb` verb on the
LB host (the other app hosts marked `down`), over ssh as the inventory says, and put back.
Load: N keep-alive HTTPS threads from this machine to the LB (Host and SNI: the service's name),
bounded in time and count (bench/httpload.py). Ratios come from this one run.

Run as root: .venv/bin/python bench/fleet_lb.py --make-fleet [--seconds 8] [--threads 8]
             .venv/bin/python bench/fleet_lb.py -i INVENTORY --bundle DEPLOYED.pyz [--next OTHER.pyz]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpload  # bench/httpload.py, next to this file
import yaml  # type: ignore[import-untyped]  # comes with ansible-core
from common import build, disposable_host, new_service, ratio, set_version

from integrator.cli import main as integrator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the fleet's own setup steps
from tests.test_deploy_ssh import allow_root_login
from tests.test_fleet_e2e import private_link

MAX_PER_THREAD = 200_000
NAME = "fleetb"
IO_MS = 50
SLOTS = 2  # requests an app host serves at a time: workers = 2, threads = 1
IO_ROUTE = f'''

@bp.get("/io")
def io() -> ResponseReturnValue:
    """Waits {IO_MS} ms as on a database or another service, using no CPU (bench/fleet_lb.py)."""
    time.sleep({IO_MS / 1000})
    return jsonify(host=socket.gethostname())
'''


def hosts(inventory: Path, group: str) -> list[tuple[str, str, str, str]]:
    """(name, address, ssh options, the LB's address for it) of each host of `group`."""
    data = yaml.safe_load(inventory.read_text())
    members = data["all"]["children"][group]["hosts"]
    out = []
    for name, h in members.items():
        address = h.get("ansible_host", name)
        out.append(
            (name, address, h.get("ansible_ssh_common_args", ""), h.get("integrator_backend", address))
        )
    return out


def pool(lb: tuple[str, str, str, str], apps: list[str], up: int, bundle: Path) -> None:
    """The first `up` app hosts in the LB's pool, the rest drained."""
    staged = f"/var/lib/integrator-fleet/{bundle.name}"
    argv = ["python3", staged, "lb", *(f"--backend={a}" for a in apps), *(f"--down={a}" for a in apps[up:])]
    ssh = ["ssh", *shlex.split(lb[2]), f"root@{lb[1]}", shlex.join(argv)]
    subprocess.run(ssh, check=True, stdout=subprocess.DEVNULL)


def throughput(address: str, name: str, path: str, threads: int, seconds: float) -> httpload.Summary:
    connect = httpload.https_connect(address, name)
    return httpload.summarize(
        httpload.run_threads(connect, path, name, threads, seconds, MAX_PER_THREAD), seconds
    )


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


def run(
    inventory: Path, bundle: Path, next_: Path | None, paths: list[str], threads: int, seconds: float
) -> None:
    lb = hosts(inventory, "integrator_lb")[0]
    apps = [backend for *_, backend in hosts(inventory, "integrator_app")]
    name = bundle.name.split("-")[0]
    rps: dict[tuple[str, int], float] = {}
    try:
        for up in range(1, len(apps) + 1):
            pool(lb, apps, up, bundle)
            for path in paths:
                s = throughput(lb[1], name, path, threads, seconds)
                rps[path, up] = s.rps
                print(f"{path:4} {up} app host(s): {s.rps:8.1f} req/s, p50 {s.p50_ms:.1f} ms, "
                      f"p99 {s.p99_ms:.1f} ms, failed {s.failed}", flush=True)  # fmt: skip
    finally:
        pool(lb, apps, len(apps), bundle)
    for path, up in rps:
        print(f"scaling {path} {up} vs 1 host(s): {ratio(rps[path, up], rps[path, 1])}")
    if next_ is not None:
        roll = ["fleet", "deploy", str(next_), "-i", str(inventory)]
        pause, summary = longest_pause(lb[1], name, threads, roll)
        print(f"rolling deploy of {next_.name}: longest pause {pause * 1000:.0f} ms, "
              f"{summary.ok} answered, {summary.failed} failed")  # fmt: skip


@contextmanager
def made_fleet() -> Iterator[tuple[Path, Path, Path]]:
    """Four fresh hosts, a service with /io in two versions, v1 rolled out: (inventory, v1, v2)."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetb-", dir="/var/tmp")))
        boxes = [stack.enter_context(disposable_host("fleet")) for _ in range(4)]
        lines = ["all:", "  vars:", "    ansible_user: root", "  children:"]
        for group, members in (("integrator_lb", boxes[:1]), ("integrator_app", boxes[1:])):
            lines += [f"    {group}:", "      hosts:"]
            for n, box in enumerate(members, start=1):
                (work / box.name).mkdir()
                config = allow_root_login(box, work / box.name)
                lines += [f"        {box.name}:", f"          ansible_host: {box.address}"]
                lines += [f"          ansible_ssh_common_args: -F {config}"]
                if group == "integrator_app":
                    lines += [f"          integrator_backend: {private_link(boxes[0], box, n)}"]
        inventory = work / "inventory.yml"
        inventory.write_text("\n".join(lines) + "\n")
        src = new_service(NAME, work / NAME)
        views = src / f"src/{NAME}/views.py"
        code, toml = views.read_text(), src / "service.toml"
        server = toml.read_text()
        assert "import socket\n" in code and "workers = 2\nthreads = 4\n" in server, "the template changed"
        views.write_text(code.replace("import socket\n", "import socket\nimport time\n") + IO_ROUTE)
        toml.write_text(server.replace("workers = 2\nthreads = 4\n", f"workers = {SLOTS}\nthreads = 1\n"))
        v1 = build(src, work / "1")
        set_version(src, NAME, "0.1.0", "0.2.0")
        v2 = build(src, work / "2")
        assert integrator(["fleet", "deploy", str(v1), "-i", str(inventory)]) == 0, "fleet deploy v1 failed"
        yield inventory, v1, v2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--make-fleet", action="store_true", help="four fresh sandbox hosts, destroyed afterwards"
    )
    parser.add_argument("-i", "--inventory", type=Path)
    parser.add_argument("--bundle", type=Path, help="the release the fleet serves")
    parser.add_argument("--next", type=Path, help="a release to roll out under load (pause measured)")
    parser.add_argument("--paths", nargs="+", default=["/", "/io"])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if args.make_fleet:
        with made_fleet() as (inventory, v1, v2):
            run(inventory, v1, v2, args.paths, args.threads, args.seconds)
    elif args.inventory and args.bundle:
        run(args.inventory, args.bundle, args.next, args.paths, args.threads, args.seconds)
    else:
        parser.error("--make-fleet, or -i INVENTORY --bundle DEPLOYED.pyz")


if __name__ == "__main__":
    main()
