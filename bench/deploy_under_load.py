"""No downtime on deploy? Failed requests and pauses under load, side by side in one run.

One disposable host serves two copies of the template service, both deployed by integrator:
`bench` (socket-activated unit) and `classic`, whose units are then replaced by the classic
hand-written recipe: a Type=notify unit where gunicorn binds its own unix socket
(`--bind unix:/run/classic/gunicorn.sock`, RuntimeDirectory=), same release, venv and
gunicorn.conf.py. Each window first primes nginx (16 short-lived connections leave idle upstream
connections in every nginx worker, as real traffic does), then runs N client threads of keep-alive
HTTPS GET / from this machine (Host: the service) and fires one event 2 s in:

  integrator deploy       `integrator deploy` of the next version of bench (0.2.0, 0.3.0, ...)
  socket-activated rst    `systemctl restart bench.service` (integrator's unit, same release)
  classic restart         `systemctl restart classic-bind.service` (the baseline)

Rounds are interleaved (the order rotates each round); medians and ratios come from this run.
Run as root: .venv/bin/python bench/deploy_under_load.py [--rounds 3] [--threads 4,16]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpload  # bench/httpload.py and bench/common.py, next to this file
from common import (
    build,
    build_versions,
    deploy,
    disposable_host,
    new_service,
    ratio,
    served_version,
    wait_serving,
)

from integrator import sandbox
from integrator.layout import Layout
from integrator.render.common import stop_timeout
from integrator.spec import load_spec

SERVICE, CLASSIC = "bench", "classic"
CLASSIC_UNIT = "classic-bind.service"
MAX_WINDOW_S = 180.0  # every load loop stops by itself after this, whatever happens here
MAX_PER_THREAD = 500_000

SEED_UNIT = """\
# The classic hand-written unit: gunicorn binds (and on stop unlinks) its own unix socket.
[Unit]
Description={name}: gunicorn binding its own socket (benchmark baseline)
After=network.target

[Service]
Type=notify
NotifyAccess=main
User={name}
Group={name}
RuntimeDirectory={name}
RuntimeDirectoryMode=0755
WorkingDirectory={app_dir}
ExecStart={venv}/bin/gunicorn --config {conf} --bind unix:{socket} {app}
KillMode=mixed
TimeoutStopSec={stop_s}

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class Window:
    design: str
    threads: int  # client connections
    event_s: float
    sent: int
    failed: int
    retried: int
    pause_ms: float  # longest time between two successful responses (any thread)
    worst_ms: float  # slowest single request
    errors: dict[str, int]


@dataclass(frozen=True)
class Design:
    name: str
    host: str  # Host header: which service the load goes to
    event: Callable[[], None]  # fired once per window


def serving_unit(box: sandbox.Sandbox, name: str) -> str:
    """NAME-a or NAME-b: the slot the serving link points at (a deploy switches them)."""
    link = box.exec(["readlink", f"/opt/{name}/serving.sock"]).stdout.decode().strip()
    return f"{name}-{'a' if link == f'/run/{name}/gunicorn-a.sock' else 'b'}"


# --- building and setting up ----------------------------------------------------------------


def install_classic(box: sandbox.Sandbox, src: Path, pyz: Path) -> None:
    """Deploy `classic` with integrator, then swap its units for the hand-written one."""
    deploy(box, pyz)
    spec, release = load_spec(src), box.exec(["readlink", f"/opt/{CLASSIC}/current"]).stdout
    layout, rid = Layout.for_spec(spec), Path(release.decode().strip()).name
    unit = SEED_UNIT.format(
        name=CLASSIC,
        app_dir=layout.app_dir(rid),
        venv=layout.venv(rid),
        conf=layout.gunicorn_conf(rid),
        socket=layout.slot("a").socket_path,
        app=spec.wsgi_app,
        stop_s=stop_timeout(spec),
    )
    box.exec(["systemctl", "disable", "--now", layout.slot("a").service_unit, layout.slot("a").socket_unit])
    box.exec(["tee", f"/etc/systemd/system/{CLASSIC_UNIT}"], input=unit.encode())
    box.exec(["systemctl", "daemon-reload"])
    box.exec(["systemctl", "enable", "--now", CLASSIC_UNIT])


# --- one window -------------------------------------------------------------------------------


def prime(address: str, host: str) -> None:
    """16 short-lived connections, 5 requests each: like real traffic, they leave idle upstream
    connections in every nginx worker (the load's few connections reach only some of them)."""
    httpload.run_threads(httpload.https_connect(address, host), "/healthz", host, 16, 5.0, 5)


def longest_pause(logs: list[httpload.ThreadLog]) -> float:
    done = sorted(s.done for log in logs for s in log.samples if s.ok)
    return max((b - a for a, b in zip(done, done[1:])), default=0.0)


def measure(address: str, design: Design, threads: int, args: argparse.Namespace) -> Window:
    """Load for `lead` s, fire the event, `tail` s more; the load stops by itself at the latest."""
    stop, out = threading.Event(), []
    connect = httpload.https_connect(address, design.host)

    def load() -> None:
        out.append(
            httpload.run_threads(connect, "/", design.host, threads, MAX_WINDOW_S, MAX_PER_THREAD, stop)
        )

    prime(address, design.host)
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(args.lead)
        started = time.monotonic()
        design.event()
        event_s = time.monotonic() - started
        time.sleep(args.tail)
    finally:
        stop.set()
        loader.join()
    logs = out[0]
    total = httpload.summarize(logs, 1.0)
    worst = max((s.latency for log in logs for s in log.samples), default=0.0)
    return Window(
        design.name, threads, event_s, total.sent, total.failed, total.retried,
        longest_pause(logs) * 1000, worst * 1000, total.errors,
    )  # fmt: skip


def designs(box: sandbox.Sandbox, bundles: list[Path]) -> list[Design]:
    upcoming = iter(enumerate(bundles[1:], start=2))

    def deploy_next() -> None:
        number, pyz = next(upcoming)
        deploy(box, pyz)
        got = served_version(box.address, SERVICE)
        if got != f"0.{number}.0":
            raise SystemExit(f"after deploying 0.{number}.0 the service answers {got}")

    return [
        Design("integrator deploy", SERVICE, deploy_next),
        Design(
            "socket-activated rst", SERVICE, lambda: restart(box, f"{serving_unit(box, SERVICE)}.service")
        ),
        Design("classic restart", CLASSIC, lambda: restart(box, CLASSIC_UNIT)),
    ]


def restart(box: sandbox.Sandbox, unit: str) -> None:
    box.exec(["systemctl", "restart", unit])


# --- the report -------------------------------------------------------------------------------

HEADINGS = ("conns", "event s", "sent", "failed", "retried", "pause ms", "worst ms")
NUMERIC = ("event_s", "sent", "failed", "retried", "pause_ms", "worst_ms")
COLUMNS = "{:<22} {:>5} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8}  {}"


def row(name: str, threads: int, values: dict[str, float], errors: str) -> str:
    v = values
    cells = (f"{v['event_s']:.1f}", f"{v['sent']:.0f}", f"{v['failed']:.0f}", f"{v['retried']:.0f}")
    return COLUMNS.format(name, threads, *cells, f"{v['pause_ms']:.0f}", f"{v['worst_ms']:.0f}", errors)


def print_window(w: Window) -> None:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(w.errors.items())) or "-"
    print(row(w.design, w.threads, {k: getattr(w, k) for k in NUMERIC}, errors), flush=True)


def report(windows: list[Window]) -> None:
    names = list(dict.fromkeys(w.design for w in windows))
    rounds = len(windows) // len({(w.design, w.threads) for w in windows})
    print(f"\nmedians of {rounds} rounds:")
    print(COLUMNS.format("design", *HEADINGS, ""))
    for threads in sorted({w.threads for w in windows}):
        med = {}
        for name in names:
            ws = [w for w in windows if w.design == name and w.threads == threads]
            med[name] = {k: statistics.median(getattr(w, k) for w in ws) for k in NUMERIC}
            print(row(name, threads, med[name], ""))
        dep, rst, cls = (med[n] for n in names)
        for label, value in [
            (
                "failed requests, classic restart vs integrator deploy",
                f"{cls['failed']:g} vs {dep['failed']:g}",
            ),
            ("longest pause, classic restart / integrator deploy", ratio(cls["pause_ms"], dep["pause_ms"])),
            ("longest pause, integrator deploy / socket-activated", ratio(dep["pause_ms"], rst["pause_ms"])),
        ]:
            print(f"  {threads:>2} conns: {label:<54} {value}")


# --- main -------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


@dataclass(frozen=True)
class Bundles:
    versions: list[Path]  # bench 0.1.0, 0.2.0, ...
    classic_src: Path
    classic: Path


def build_all(work: Path, deploys: int) -> Bundles:
    classic_src = new_service(CLASSIC, work / CLASSIC)
    versions = build_versions(SERVICE, work, deploys + 1)
    return Bundles(versions, classic_src, build(classic_src, work / "dist" / CLASSIC))


def run(box: sandbox.Sandbox, built: Bundles, args: argparse.Namespace) -> list[Window]:
    bundles, classic_src, classic_pyz = built.versions, built.classic_src, built.classic
    deploy(box, bundles[0])
    install_classic(box, classic_src, classic_pyz)
    print(f"serving: {SERVICE} {wait_serving(box.address, SERVICE)}, {CLASSIC} ", end="")
    print(wait_serving(box.address, CLASSIC), flush=True)
    order, windows = designs(box, bundles), []
    print(COLUMNS.format("design", *HEADINGS, "errors"))
    for rnd in range(args.rounds):
        for threads in args.threads:
            for design in order[rnd % 3 :] + order[: rnd % 3]:
                windows.append(measure(box.address, design, threads, args))
                print_window(windows[-1])
                wait_serving(box.address, design.host)
    return windows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=_ints, default=[4, 16], help="client connections, e.g. 4,16")
    parser.add_argument("--lead", type=float, default=2.0, help="seconds of load before the event")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds of load after the event")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        built = build_all(Path(tmp), args.rounds * len(args.threads))
        print(f"built {len(built.versions) + 1} bundles in {time.monotonic() - started:.0f} s", flush=True)
        with disposable_host("bdl") as box:
            windows = run(box, built, args)
    report(windows)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
