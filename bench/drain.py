"""Deploys under load (issue 11 goal 1): failed, duplicated and lost requests, longest pause, per case.

    .venv/bin/python bench/drain.py               # 3 rounds x 3 cases: ~10 min quiet
    .venv/bin/python bench/drain.py --rounds 1 --cases 27

Whatever activation main has is what it measures (restart-based before drain-first, drain-first after).
Cases: the template pinned to gunicorn 23 and to gunicorn 27 (tests/fixtures/drain) on one Debian 12
host (Python 3.11), and gunicorn 23 on a second host whose only python3 is 3.9 (tests/py39host.py:
the bundle's cp39 target runs). Each window: `wrk -t2 -c16` (16 keep-alive HTTPS connections through
nginx, from this machine to the host's address; half GET /, half POST /post with a unique id,
bench/drain.lua) runs `--lead` s, then `integrator deploy` of the next version, then `integrator
rollback`, then `--tail` s; wrk is stopped with SIGINT (and runs at most MAX_WINDOW_S in any case).
Per window:
- answered: responses received (any status); failed: non-2xx answers + socket errors (connect, read,
  write, timeout) as wrk counts them;
- duplicated: POST ids the app logged more than once; lost: POST ids answered 201 (done, says the
  app) that the journal does not have;
- pause: the longest time in which none of the 16 connections completed a 2xx response (the gap
  between two consecutive 2xx completions, over the whole window), and the phase it began in.
Rounds rotate the order of the cases; medians over rounds. Hosts are always destroyed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from common import deploy, disposable_host, served_version, set_version, wait_serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the fixtures and the 3.9 host
from tests.drain_services import drain_service, post_ids, unlimited_journal
from tests.py39host import make_python39, pyenv_python39

from integrator import sandbox
from integrator.bundle.commands import bundle
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget

LUA = Path(__file__).with_name("drain.lua")
MAX_WINDOW_S = 300  # wrk's -d: the load stops by itself then, whatever happens here
CONNECTIONS, WRK_THREADS = 16, 2
# wrk resolves the URL's name and sends it as SNI and Host; it runs in a private mount namespace
# where /etc/hosts maps the service's name to the sandbox's address (this machine's is untouched).
WRK_IN_NS = 'mount --bind "$0" /etc/hosts && exec "$@"'


@dataclass(frozen=True)
class Case:
    label: str
    fixture: str  # tests/fixtures/drain/<fixture>
    name: str  # the service (and the name wrk asks for)
    python: str  # the bundle's one target
    py39_host: bool


CASES = {
    "23": Case("gunicorn 23", "gunicorn23", "drb23", "3.11", False),
    "27": Case("gunicorn 27", "gunicorn27", "drb27", "3.11", False),
    "39": Case("3.9 host, gunicorn 23", "gunicorn23", "drb39", "3.9", True),
}


@dataclass(frozen=True)
class Window:
    case: str
    answered: int
    failed: int
    errors: str  # what failed: "502 x3, read 2"
    duplicated: int
    lost: int
    acked: int
    pause_ms: float
    pause_in: str  # lead / deploy / rollback / tail
    worst_ms: float  # slowest single request (wrk)
    deploy_s: float
    rollback_s: float


# --- building and hosts -------------------------------------------------------------------------


def build_case(case: Case, work: Path, count: int) -> list[Path]:
    """Bundles of the case's service, 0.1.0, 0.2.0, ... (`count` of them), for its one target."""
    src = drain_service(case.fixture, case.name, work / case.name)
    bundles, old = [], "0.1.0"
    for i in range(count):
        version = f"0.{i + 1}.0"
        set_version(src, case.name, old, version)
        out = work / "dist" / case.name / version
        result = bundle(src, pythons=[case.python], platforms=["x86_64"], output=out, sign_key=None)
        if result.exit_code != 0:
            raise SystemExit("\n".join(result.lines))
        bundles.append(next(out.glob("*.pyz")))
        old = version
    return bundles


@contextmanager
def hosts(cases: list[Case]) -> Iterator[dict[bool, sandbox.Sandbox]]:
    """A Debian 12 host and/or a 3.9 host, as the cases need; journald without rate limit."""
    with ExitStack() as stack:
        made = {}
        for py39 in sorted({c.py39_host for c in cases}):
            box = stack.enter_context(disposable_host("drb39" if py39 else "drb"))
            if py39:
                prefix = pyenv_python39()
                if prefix is None:
                    raise SystemExit("no pyenv Python 3.9 build here (~/.pyenv/versions/3.9.*)")
                print(f"{box.name}: python3 is now {make_python39(box, prefix)}", flush=True)
            unlimited_journal(box)
            made[py39] = box
        yield made


# --- one window ---------------------------------------------------------------------------------


def start_wrk(box: sandbox.Sandbox, case: Case, work: Path, prefix: str) -> subprocess.Popen[bytes]:
    hosts_file = work / "hosts"
    hosts_file.write_text(f"127.0.0.1 localhost\n{box.address} {case.name}\n")
    argv = ["unshare", "-m", "--", "sh", "-c", WRK_IN_NS, str(hosts_file), "wrk"]
    argv += [f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{MAX_WINDOW_S}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), f"https://{case.name}/"]
    env = {**os.environ, "DRAIN_OUT": str(work / f"{prefix}.out"), "DRAIN_PREFIX": prefix}
    log = (work / f"{prefix}.wrk").open("wb")
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_wrk(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # wrk stops, then runs the script's done()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse(out: Path) -> tuple[list[float], list[str], dict[str, int]]:
    """(2xx completion times, acknowledged ids, counts: 'status 502', 'errors read', ...)."""
    times: list[float] = []
    acked: list[str] = []
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "t":
            times.append(float(rest))
        elif kind == "acked":
            acked.append(rest)
        else:
            key, _, n = rest.rpartition(" ")
            counts[f"{kind} {key}".strip()] = counts.get(f"{kind} {key}".strip(), 0) + int(float(n))
    return sorted(times), acked, counts


def longest_pause(times: list[float], phases: list[tuple[str, float]]) -> tuple[float, str]:
    """The longest gap between consecutive 2xx completions, and the phase in which it began."""
    if len(times) < 2:
        return float("inf"), "no answers"
    gap, start = max((b - a, a) for a, b in zip(times, times[1:]))
    return gap, next((name for name, began in reversed(phases) if start >= began), "lead")


def window(
    box: sandbox.Sandbox, case: Case, nxt: Path, prefix: str, work: Path, args: argparse.Namespace
) -> Window:
    """Load, deploy `nxt`, roll back, load: the window's numbers (the version served is checked)."""
    before = served_version(box.address, case.name)
    phases = [("lead", time.monotonic())]
    proc = start_wrk(box, case, work, prefix)
    try:
        time.sleep(args.lead)
        phases.append(("deploy", time.monotonic()))
        deploy(box, nxt)
        new = served_version(box.address, case.name)
        phases.append(("rollback", time.monotonic()))
        result = commands.rollback(case.name, SandboxTarget(box.name))
        if result.exit_code != 0:
            raise SystemExit("rollback failed:\n" + "\n".join(result.lines))
        phases.append(("tail", time.monotonic()))
        time.sleep(args.tail)
    finally:
        stop_wrk(proc)
    after = served_version(box.address, case.name)
    if new == before or after == new or after.startswith("HTTP"):
        raise SystemExit(f"{case.name}: served {before}, deployed {new}, rolled back: serves {after}")
    times, acked, counts = parse(work / f"{prefix}.out")
    logged = {k: n for k, n in post_ids(box, case.name).items() if k.startswith(f"{prefix}-")}
    statuses = {k.split()[1]: n for k, n in counts.items() if k.startswith("status ")}
    bad = {k: n for k, n in statuses.items() if not k.startswith("2")}
    errors = {k.split()[1]: n for k, n in counts.items() if k.startswith("errors ") and n}
    pause, where = longest_pause(times, phases)
    return Window(
        case.label,
        answered=sum(statuses.values()),
        failed=sum(bad.values()) + sum(errors.values()),
        errors=", ".join(f"{k} x{n}" for k, n in sorted({**bad, **errors}.items())) or "-",
        duplicated=sum(1 for n in logged.values() if n > 1),
        lost=sum(1 for k in acked if k not in logged),
        acked=len(acked),
        pause_ms=pause * 1000,
        pause_in=where,
        worst_ms=counts.get("latency_max_us", 0) / 1000,
        deploy_s=phases[2][1] - phases[1][1],
        rollback_s=phases[3][1] - phases[2][1],
    )


# --- report ---------------------------------------------------------------------------------------

NUMERIC = ("answered", "failed", "duplicated", "lost", "pause_ms", "worst_ms", "deploy_s", "rollback_s")
HEAD = "{:<22} {:>8} {:>6} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}  {}"
HEADINGS = ("answered", "failed", "dup", "lost", "pause ms", "worst ms", "deploy s", "rollbk s")


def row(label: str, v: dict[str, float], extra: str) -> str:
    cells = [f"{v[k]:.0f}" for k in NUMERIC[:6]] + [f"{v['deploy_s']:.1f}", f"{v['rollback_s']:.1f}"]
    return HEAD.format(label, *cells, extra)


def print_window(w: Window) -> None:
    values = {k: float(getattr(w, k)) for k in NUMERIC}
    print(row(w.case, values, f"pause in {w.pause_in}; {w.acked} POSTs acked; failed: {w.errors}"))


def report(windows: list[Window], rounds: int) -> None:
    print(f"\nmedians of {rounds} rounds (a deploy and a rollback per round, {CONNECTIONS} connections):")
    print(HEAD.format("case", *HEADINGS, ""))
    for label in dict.fromkeys(w.case for w in windows):
        ws = [w for w in windows if w.case == label]
        med = {k: statistics.median(float(getattr(w, k)) for w in ws) for k in NUMERIC}
        worst = max(w.pause_ms for w in ws)
        totals = f"all rounds: failed {sum(w.failed for w in ws)}, dup {sum(w.duplicated for w in ws)}"
        print(row(label, med, f"{totals}, lost {sum(w.lost for w in ws)}, max pause {worst:.0f} ms"))


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="23,27,39", help="which of 23, 27, 39 (the 3.9 host)")
    parser.add_argument("--lead", type=float, default=3.0, help="seconds of load before the deploy")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds of load after the rollback")
    args = parser.parse_args()
    cases = [CASES[c] for c in args.cases.split(",")]
    started = time.monotonic()
    windows: list[Window] = []
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        work = Path(tmp)
        built = {c.name: build_case(c, work, args.rounds + 1) for c in cases}
        print(f"built {sum(map(len, built.values()))} bundles in {time.monotonic() - started:.0f} s")
        with hosts(cases) as boxes:
            for case in cases:
                deploy(boxes[case.py39_host], built[case.name][0])
                print(f"{case.name}: serving {wait_serving(boxes[case.py39_host].address, case.name)}")
            print(HEAD.format("case", *HEADINGS, ""))
            for rnd in range(args.rounds):
                for case in cases[rnd % len(cases) :] + cases[: rnd % len(cases)]:
                    box, nxt = boxes[case.py39_host], built[case.name][rnd + 1]
                    windows.append(window(box, case, nxt, f"r{rnd}{case.name}", work, args))
                    print_window(windows[-1])
    report(windows, args.rounds)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
