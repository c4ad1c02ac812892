"""Where nginx caps ours / direct (issue 11 goal 2): the bare app behind its site, as rendered and
with cheap site-level nginx knobs changed one at a time, next to the same gunicorn reached directly.

    .venv/bin/python bench/nginx_cost.py --rounds 3 --seconds 6       # ~5 min on a quiet machine

One fresh host, `bare` (the template without requestlog.init_app: no ProxyFix, no request line)
deployed by integrator, and a twin of its gunicorn on TCP 127.0.0.1:8081 (`direct`, as in
throughput.py), also sent the headers nginx adds (`direct+hdrs`: their parsing in gunicorn). wrk
(-t2 -c16, keep-alive, GET /healthz) inside the host. Before each run of a
variant, bare's site is written as rendered plus that variant's change, checked (`nginx -t`)
and reloaded, then warmed up for 1 s (not counted). Only site-level directives: integrator does
not render nginx.conf. With nothing in the journal per request, what is left over direct is
nginx (TLS, HTTP, proxying) and the header parsing it adds to gunicorn: the cap on ours / direct
that no log line or app setting can lift.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import wrk  # bench/wrk.py and bench/common.py, next to this file
from common import build, deploy, disposable_host, new_service, wait_serving
from throughput import (
    DIRECT_PORT,
    HEAD,
    Config,
    Sample,
    line,
    main_pid,
    measure,
    server_cpu,
    start_twin,
    without_requestlog,
)

from integrator import sandbox

SITE = "/etc/nginx/conf.d/bare.conf"
# What nginx adds to a request for the app (render/nginx_shared.py proxy_include, render/nginx.py
# _proxy), sent straight to gunicorn: what parsing them costs it without nginx.
NGINX_HEADERS = (
    "Host: bare",
    "X-Real-IP: 127.0.0.1",
    "X-Forwarded-For: 127.0.0.1",
    "X-Forwarded-Proto: https",
    "X-Forwarded-Port: 443",
    "X-Forwarded-Host: bare",
    "X-Request-ID: 0123456789abcdef0123456789abcdef",
)


def _after(anchor: str, added: str) -> Callable[[str], str]:
    """Insert `added` on the line after the first line containing `anchor`, same indentation."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        i = next(n for n, s in enumerate(lines) if anchor in s)
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        return "\n".join([*lines[: i + 1], indent + added, *lines[i + 1 :]]) + "\n"

    return edit


def _no_access_log(text: str) -> str:
    return "\n".join(
        "    access_log off;" if s.lstrip().startswith("access_log ") else s for s in text.split("\n")
    )


def _exact_names(text: str) -> str:
    """The names map as a hash lookup instead of a regular expression (bare's one name)."""
    return text.replace("~^bare$ bare;", "bare bare;")


VARIANTS: dict[str, list[Callable[[str], str]]] = {
    "rendered": [],
    "no-log": [_no_access_log],
    "no-buffering": [_after("proxy_pass ", "proxy_buffering off;")],
    "ssl-buf-4k": [_after("ssl_certificate_key ", "ssl_buffer_size 4k;")],
    "ka-requests": [_after("ssl_certificate_key ", "keepalive_requests 100000;")],
    "exact-names": [_exact_names],
}
VARIANTS["all"] = [edit for edits in VARIANTS.values() for edit in edits]


def apply(box: sandbox.Sandbox, rendered: str, name: str) -> None:
    text = rendered
    for edit in VARIANTS[name]:
        text = edit(text)
    if name != "rendered" and text == rendered:
        raise SystemExit(f"variant {name} changed nothing: the rendered site changed, update {__file__}")
    box.exec(["tee", SITE], input=text.encode())
    box.exec(["nginx", "-t"])
    box.exec(["systemctl", "reload", "nginx"])
    time.sleep(0.5)


def main() -> int:
    args = wrk.parser(__doc__ or "", 6.0).parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ngx-") as tmp, disposable_host("bng") as box:
        src = new_service("bare", Path(tmp) / "bare")
        without_requestlog(src, "bare")
        deploy(box, build(src, Path(tmp) / "dist"))
        wrk.install(box, ["bare"])
        print(f"serving: bare {wait_serving(box.address, 'bare')}", flush=True)
        twin = wrk.probe(box, "unit", str(main_pid(box, "bare")))
        start_twin(box, twin, "bare-direct", [f"--bind=127.0.0.1:{DIRECT_PORT}"])  # type: ignore[arg-type]
        wait_port = f"for i in $(seq 100); do (: </dev/tcp/127.0.0.1/{DIRECT_PORT}) && exit; sleep 0.2; done"
        box.exec(["bash", "-c", wait_port])  # the twin's gunicorn listens (20 s at most)
        rendered = box.exec(["cat", SITE]).stdout.decode()
        via_nginx = Config("", "https://bare:443/healthz", str(twin["unit"]))  # type: ignore[index]
        direct = Config("direct", f"http://127.0.0.1:{DIRECT_PORT}/healthz", "bare-direct.service")
        wrk.run(box, direct.url, 2.0, args.connections, args.threads)
        print(HEAD, flush=True)
        samples: list[Sample] = []
        for _ in range(args.rounds):
            samples.append(measure(box, direct, args, args.seconds))
            print(line(samples[-1]), flush=True)
            sample = measure(box, direct, args, args.seconds, NGINX_HEADERS)
            samples.append(Sample("direct+hdrs", sample.run, sample.cpu_ms))
            print(line(samples[-1]), flush=True)
            for name in VARIANTS:
                apply(box, rendered, name)
                wrk.run(box, via_nginx.url, 1.0, args.connections, args.threads)
                sample = measure(box, via_nginx, args, args.seconds)
                samples.append(Sample(name, sample.run, sample.cpu_ms))
                print(line(samples[-1]), flush=True)
        apply(box, rendered, "rendered")
        load = box.exec(["cat", "/proc/loadavg"]).stdout.decode().split()[:3]
    report(samples, args.rounds)
    print(f"\nload average at the end: {' '.join(load)}; total {time.monotonic() - started:.0f} s")
    return 0


def report(samples: list[Sample], rounds: int) -> None:
    """Per variant, medians over rounds: CPU per request, the server-CPU ratio direct / variant
    (per round), and the cap nginx alone sets: direct / (direct + the variant's nginx)."""
    per, med = len(samples) // rounds, statistics.median
    by_round = [{s.config: s for s in samples[r * per : (r + 1) * per]} for r in range(rounds)]
    print(f"\nmedians of {rounds} rounds (CPU: ms per 1000 requests = us per request):")
    print("variant         req/s  gunicorn   nginx  journald  direct/this     cap")
    for name in ("direct", "direct+hdrs", *VARIANTS):
        mine = [b[name] for b in by_round]
        ratio = med(server_cpu(b["direct"]) / server_cpu(b[name]) for b in by_round)
        cap = med(
            server_cpu(b["direct"]) / (server_cpu(b["direct"]) + b[name].cpu_ms["nginx"]) for b in by_round
        )
        cpu = [med(s.cpu_ms[k] for s in mine) for k in ("app", "nginx", "journald")]
        rps = med(s.run.rps for s in mine)
        print(
            f"{name:<13} {rps:>7.0f} {cpu[0]:>9.0f} {cpu[1]:>7.0f} {cpu[2]:>9.0f}"
            f" {ratio:>11.2f}x {cap:>6.2f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())
