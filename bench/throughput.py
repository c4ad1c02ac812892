"""Throughput of integrator's stack vs gunicorn reached directly, a bare Flask app, and the classic
hand-written stack (issue 11 goal 2), measured with wrk inside one sandbox host, side by side.

    .venv/bin/python bench/throughput.py                  # 3 rounds x 10 s x 4 configurations: ~4 min
    .venv/bin/python bench/throughput.py --rounds 3 --seconds 5

Two services deployed by integrator: `bench` (the template as `integrator new` makes it) and
`bare` (the same, without the template's requestlog.init_app: no ProxyFix, no per-request JSON
line). wrk runs inside the host, 16 keep-alive connections on 2 threads, GET /healthz:

  ours      https://bench/  nginx + TLS -> unix socket, upstream keep-alive (what integrator renders)
  direct    http://127.0.0.1:8081/  a twin of bench's gunicorn (same argv, gunicorn.conf.py,
            user, environment; `--bind` TCP, no unit hardening), reached without nginx
  bare      https://bare/   as `ours`, with the bare app
  no-ngx-log https://quiet/ as `ours` (a third copy of the template) with nginx's access line
            turned off in its site after the deploy: what the line (or, since nginx logs only
            what the app does not, its `if=` map) costs (measurement only)
  classic   https://bench:8443/  the hand-written recipe: nginx `include proxy_params`,
            `proxy_pass http://127.0.0.1:8080` (HTTP/1.0, a new upstream connection per
            request), stock access log file; gunicorn with its defaults (sync workers), as many
            workers as bench, same app and release

All gunicorns log each request to the journal (the template's JSON line on stdout); nginx's
access line goes to the journal only for what the app does not log (render/nginx_logs.py
`log_filter`): none for these answered GETs. Per configuration also the CPU each part used
per 1000 requests (cgroup cpu.stat of gunicorn's unit, nginx.service, systemd-journald.service).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import wrk  # bench/wrk.py and bench/common.py, next to this file
from common import build, deploy, disposable_host, new_service, wait_serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: journald without a rate limit
from tests.drain_services import unlimited_journal

from integrator import sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget

NGINX, JOURNAL = "nginx.service", "systemd-journald.service"
DIRECT_PORT, CLASSIC_PORT, CLASSIC_TLS_PORT = 8081, 8080, 8443
CLASSIC_SITE = "/etc/nginx/conf.d/zz-bench-classic.conf"


@dataclass(frozen=True)
class Config:
    name: str
    url: str
    app_unit: str  # the gunicorn whose CPU is counted


@dataclass(frozen=True)
class Sample:
    config: str
    run: wrk.WrkRun
    cpu_ms: dict[str, float]  # part -> CPU ms per 1000 requests


def main_pid(box: sandbox.Sandbox, name: str) -> int:
    data = commands.status(name, SandboxTarget(box.name)).data
    return int(data["services"][0]["main_pid"])


def without_requestlog(src: Path, name: str) -> None:
    """The template minus its requestlog: a bare Flask app with the same views."""
    init = src / "src" / name / "__init__.py"
    text = init.read_text()
    assert "    requestlog.init_app(app)\n" in text, "template changed: update bench/throughput.py"
    init.write_text(text.replace("    requestlog.init_app(app)\n", ""))


def start_twin(box: sandbox.Sandbox, twin: dict[str, object], unit: str, extra: list[str]) -> None:
    """bench's gunicorn again as a transient unit, with `extra` arguments (a TCP bind)."""
    argv = [str(a) for a in twin["argv"]]  # type: ignore[attr-defined]
    env = [f"--setenv={e}" for e in twin["environment"]]  # type: ignore[attr-defined]
    run = ["systemd-run", f"--unit={unit}", f"--uid={twin['user']}", f"--working-directory={twin['cwd']}"]
    box.exec([*run, *env, *argv[:-1], *extra, argv[-1]])


def classic_site(box: sandbox.Sandbox) -> None:
    """The hand-written site: Debian's proxy_params, TCP upstream, no keep-alive, bench's cert."""
    site = box.exec(["cat", "/etc/nginx/conf.d/bench.conf"]).stdout.decode()
    tls = [line.strip() for line in site.splitlines() if line.strip().startswith("ssl_certificate")]
    lines = [
        "server {",
        f"    listen {CLASSIC_TLS_PORT} ssl;",
        "    server_name bench;",
        *(f"    {line}" for line in tls),
        "    location / {",
        f"        proxy_pass http://127.0.0.1:{CLASSIC_PORT};",
        "        include proxy_params;",
        "    }",
        "}",
    ]
    box.exec(["tee", CLASSIC_SITE], input=("\n".join(lines) + "\n").encode())
    box.exec(["nginx", "-t"])
    box.exec(["systemctl", "reload", "nginx"])


def without_access_log(box: sandbox.Sandbox, name: str) -> None:
    site = f"/etc/nginx/conf.d/{name}.conf"
    box.exec(["sed", "-i", "-E", rf"s/^(\s*)access_log .* {name}_json( if=\S+)?;$/\1access_log off;/", site])
    box.exec(["grep", "-q", "access_log off;", site])  # the sed found its line
    box.exec(["nginx", "-t"])
    box.exec(["systemctl", "reload", "nginx"])


def setup(box: sandbox.Sandbox, work: Path) -> list[Config]:
    # Every line stored: journald's default limit (10 000 per 30 s per unit) would drop most of
    # them at these rates, and dropping is cheaper than storing.
    unlimited_journal(box)
    bench = build(new_service("bench", work / "bench"), work / "dist" / "bench")
    quiet = build(new_service("quiet", work / "quiet"), work / "dist" / "quiet")
    bare_src = new_service("bare", work / "bare")
    without_requestlog(bare_src, "bare")
    for pyz in (bench, quiet, build(bare_src, work / "dist" / "bare")):
        deploy(box, pyz)
    without_access_log(box, "quiet")
    wrk.install(box, ["bench", "bare", "quiet"])
    for name in ("bench", "bare", "quiet"):
        print(f"serving: {name} {wait_serving(box.address, name)}", flush=True)
    twin = wrk.probe(box, "unit", str(main_pid(box, "bench")))
    bare_unit = wrk.probe(box, "unit", str(main_pid(box, "bare")))["unit"]  # type: ignore[index]
    quiet_unit = wrk.probe(box, "unit", str(main_pid(box, "quiet")))["unit"]  # type: ignore[index]
    start_twin(box, twin, "bench-direct", [f"--bind=127.0.0.1:{DIRECT_PORT}"])  # type: ignore[arg-type]
    workers = box.exec(["sed", "-n", "s/^workers = //p", str(twin["argv"][2])]).stdout.decode().strip()  # type: ignore[index]
    # The classic recipe's gunicorn: its defaults (sync workers), not integrator's config file.
    classic = dict(twin)  # type: ignore[call-overload]
    classic["argv"] = [twin["argv"][0], f"--workers={workers}", twin["argv"][-1]]  # type: ignore[index]
    start_twin(box, classic, "bench-classic", [f"--bind=127.0.0.1:{CLASSIC_PORT}"])
    classic_site(box)
    return [
        Config("ours", "https://bench:443/healthz", str(twin["unit"])),  # type: ignore[index]
        Config("direct", f"http://127.0.0.1:{DIRECT_PORT}/healthz", "bench-direct.service"),
        Config("bare", "https://bare:443/healthz", str(bare_unit)),
        Config("classic", f"https://bench:{CLASSIC_TLS_PORT}/healthz", "bench-classic.service"),
        Config("no-ngx-log", "https://quiet:443/healthz", str(quiet_unit)),
    ]


def measure(
    box: sandbox.Sandbox,
    config: Config,
    args: argparse.Namespace,
    seconds: float,
    headers: tuple[str, ...] = (),
) -> Sample:
    units = [config.app_unit, NGINX, JOURNAL]
    before = wrk.probe(box, "cpu", *units)
    run = wrk.run(box, config.url, seconds, args.connections, args.threads, headers=headers)
    after = wrk.probe(box, "cpu", *units)
    per_k = 1e6 / max(run.requests, 1)  # CPU seconds -> ms per 1000 requests
    cpu = {u: (after[u] - before[u]) * per_k for u in units}  # type: ignore[index]
    return Sample(
        config.name, run, {"app": cpu[config.app_unit], "nginx": cpu[NGINX], "journald": cpu[JOURNAL]}
    )


COLUMNS = "{:<10} {:>8} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}"
HEAD = COLUMNS.format("config", "req/s", "p50 ms", "p99 ms", "errors", "app cpu", "nginx cpu", "journald")


def line(s: Sample) -> str:
    r, c = s.run, s.cpu_ms
    return COLUMNS.format(
        s.config, f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", r.errors,
        *(f"{c[k]:.0f}" for k in ("app", "nginx", "journald")),
    )  # fmt: skip


def median_sample(samples: list[Sample], name: str) -> Sample:
    mine = [s for s in samples if s.config == name]
    med = statistics.median
    run = wrk.WrkRun(  # requests per second as `requests` in 1 s: the median rate
        round(med(s.run.rps for s in mine)),
        1.0,
        sum(s.run.failed for s in mine),
        sum(s.run.closed for s in mine),
        med(s.run.p50_ms for s in mine),
        med(s.run.p99_ms for s in mine),
        max(s.run.max_ms for s in mine),
        0.0,
    )
    return Sample(name, run, {k: med(s.cpu_ms[k] for s in mine) for k in mine[0].cpu_ms})


# (label, numerator config, denominator config, goal): capacity of one over the other.
RATIOS = (
    ("ours / direct gunicorn", "ours", "direct", "goal >= 0.85"),
    ("bare Flask / template: the template's own cost", "bare", "ours", "goal <= 1.3"),
    ("ours / classic hand-written stack", "ours", "classic", "goal >= 1.3"),
    ("ours without nginx's access line / direct", "no-ngx-log", "direct", ""),
)


def server_cpu(s: Sample) -> float:
    """CPU ms per 1000 requests on the server side (gunicorn, nginx, journald; not wrk)."""
    return sum(s.cpu_ms.values())


def round_ratios(samples: list[Sample], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per round: (req/s ratio, server-CPU ratio) of each pair. Runs of one round are minutes
    apart at most; across rounds the machine's load (other engineers' tests) may change a lot."""
    per = len(samples) // rounds
    out: dict[str, list[tuple[float, float]]] = {}
    for r in range(rounds):
        by = {s.config: s for s in samples[r * per : (r + 1) * per]}
        for label, a, b, _ in RATIOS:
            if a in by and b in by:
                rps = by[a].run.rps / by[b].run.rps
                cpu = server_cpu(by[b]) / server_cpu(by[a])  # capacity: less CPU per request is more
                out.setdefault(label, []).append((rps, cpu))
    return out


def report(samples: list[Sample], rounds: int) -> None:
    names = list(dict.fromkeys(s.config for s in samples))
    m = {name: median_sample(samples, name) for name in names}
    print(f"\nmedians of {rounds} rounds (errors: total; CPU: ms per 1000 requests):")
    print(HEAD)
    for name in names:
        print(line(m[name]))
    print("\nratios, medians of the per-round ratios (req/s as measured; server CPU per request:")
    print("the capacity ratio on a server whose cores the client and other work do not share):")
    for label, pairs in round_ratios(samples, rounds).items():
        goal = next(g for lbl, _, _, g in RATIOS if lbl == label)
        rps = statistics.median(p[0] for p in pairs)
        cpu = statistics.median(p[1] for p in pairs)
        print(f"  {label:<47} req/s {rps:.2f}x   server CPU {cpu:.2f}x   {goal}")


def main() -> int:
    args = wrk.parser(__doc__ or "", 10.0).parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-tput-") as tmp, disposable_host("btp") as box:
        configs = setup(box, Path(tmp))
        for config in configs:  # warm-up: imports, TLS sessions, nginx workers; not counted
            wrk.run(box, config.url, 2.0, args.connections, args.threads)
        print(HEAD, flush=True)
        samples = []
        for rnd in range(args.rounds):
            for config in configs[rnd % len(configs) :] + configs[: rnd % len(configs)]:
                samples.append(measure(box, config, args, args.seconds))
                print(line(samples[-1]), flush=True)
        load = box.exec(["cat", "/proc/loadavg"]).stdout.decode().split()[:3]
    report(samples, args.rounds)
    print(f"\nload average at the end: {' '.join(load)}; total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
