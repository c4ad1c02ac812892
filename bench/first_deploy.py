"""Time to first deploy, to the n-th deploy, the venv step old vs new, and a warm `bundle` (issue 11 goal 4).

    .venv/bin/python bench/first_deploy.py               # 3 rounds: ~4 min
    .venv/bin/python bench/first_deploy.py --rounds 5

One fresh sandbox host. Per round (medians over rounds):
- **first deploy**: `integrator deploy` (wall clock, from this machine) of a service the host has
  never seen (`svc1`, `svc2`, ...; round 1 is also the host's first deploy of anything);
- **n-th deploy, new lock**: the next version of the same service (a new app wheel: a venv is built);
- **n-th deploy, same lock**: the same version with other settings (`[server] workers`): the venv is
  reused;
- **venv step, old vs new**, interleaved, on the host, from a deployed release's wheelhouse and
  lock: `python3 -m venv` (ensurepip) + `pip install --no-index --require-hashes --no-deps -r`
  (what deploys did before) vs `venv.build_venv` (`--without-pip` + integrator's installer).
Then `integrator bundle` of the template for three targets (3.9, 3.11, 3.12), once to warm pip's
cache, then `--rounds` times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import PY, disposable_host, new_service, set_version

from integrator import sandbox
from integrator.bundle.commands import bundle
from integrator.host.deploy_options import DeployOptions
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget

# Runs inside the host with the release's own host code (releases/<id>/integrator/) on sys.path.
VENV_STEP = r"""
import shutil, subprocess, sys, time
from pathlib import Path
release, lock, mode, dest = sys.argv[1:5]
sys.path.insert(0, release)
from integrator.bundle.venv import build_venv, locked_wheel_digests
house = Path(release) / "payload/wheelhouse"
start = time.monotonic()
if mode == "new":
    build_venv(Path(dest), house, Path(release) / lock, python="/usr/bin/python3")
else:
    subprocess.run(["/usr/bin/python3", "-m", "venv", dest], check=True)
    reqs = Path(dest) / "reqs.txt"
    pins = locked_wheel_digests(house, Path(release) / lock)
    reqs.write_text("".join(f"{house}/{name} --hash=sha256:{sha}\n" for name, sha in pins.items()))
    subprocess.run([dest + "/bin/python", "-m", "pip", "install", "--isolated", "--no-index",
                    "--require-hashes", "--no-deps", "--only-binary", ":all:", "--no-cache-dir",
                    "-q", "-r", str(reqs)], check=True)
print(f"{time.monotonic() - start:.3f}")
shutil.rmtree(dest)
"""


def build(src: Path, out: Path, pythons: list[str]) -> tuple[Path, float]:
    start = time.monotonic()
    result = bundle(src, pythons=pythons, platforms=["x86_64"], output=out, sign_key=None)
    if result.exit_code != 0:
        raise SystemExit("\n".join(result.lines))
    return next(out.glob("*.pyz")), time.monotonic() - start


def timed_deploy(box: sandbox.Sandbox, pyz: Path) -> tuple[float, dict[str, object]]:
    start = time.monotonic()
    result = commands.deploy(DeployOptions(pyz), SandboxTarget(box.name))
    took = time.monotonic() - start
    if result.exit_code != 0:
        raise SystemExit("deploy failed:\n" + "\n".join(result.lines))
    return took, result.data


def venv_step(box: sandbox.Sandbox, release: str, mode: str) -> float:
    lock = f"payload/locks/cp{PY.replace('.', '')}-x86_64.txt"
    argv = ["python3", "-c", VENV_STEP, release, lock, mode, f"/root/bench-venv-{mode}"]
    return float(box.exec(argv).stdout.decode().strip())


def med(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s" if values else "     -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = max(3, args.rounds)
    times: dict[str, list[float]] = {k: [] for k in ("first", "new", "same", "old", "venv", "bundle")}
    with tempfile.TemporaryDirectory(prefix="bench-first-") as tmp:
        work = Path(tmp)
        print(f"building {3 * rounds} bundles for Python {PY} ...", flush=True)
        plans = []
        for n in range(1, rounds + 1):
            name = f"svc{n}"
            src = new_service(name, work / name)
            first = build(src, work / "dist" / name / "1", [PY])[0]
            set_version(src, name, "0.1.0", "0.2.0")
            second = build(src, work / "dist" / name / "2", [PY])[0]
            toml = src / "service.toml"
            toml.write_text(toml.read_text().replace("workers = 2", "workers = 3"))
            third = build(src, work / "dist" / name / "3", [PY])[0]
            plans.append((name, first, second, third))
        with disposable_host("venv") as box:
            for n, (name, first, second, third) in enumerate(plans, 1):
                took, data = timed_deploy(box, first)
                times["first"].append(took)
                took, data = timed_deploy(box, second)
                times["new"].append(took)
                assert data["venv"]["reused"] is False, data  # type: ignore[index]
                took, data = timed_deploy(box, third)
                times["same"].append(took)
                assert data["venv"]["reused"] is True, data  # type: ignore[index]
                release = f"/opt/{name}/releases/{data['release']}"
                modes = ("old", "new") if n % 2 else ("new", "old")
                for mode in modes:
                    times["old" if mode == "old" else "venv"].append(venv_step(box, release, mode))
                print(f"round {n}: first {times['first'][-1]:.2f} s, n-th {times['new'][-1]:.2f} s, "
                      f"same lock {times['same'][-1]:.2f} s", flush=True)  # fmt: skip
        src = new_service("shop", work / "shop")
        three = ["3.9", "3.11", "3.12"]
        build(src, work / "warm", three)
        for n in range(rounds):
            times["bundle"].append(build(src, work / f"b{n}", three)[1])
    print()
    print(f"medians of {rounds} rounds (wall clock of `integrator deploy --host`, from this machine)")
    print(f"  time to first deploy (new service)          {med(times['first'])}")
    print(f"  time to n-th deploy, new version            {med(times['new'])}")
    print(f"  time to n-th deploy, same lock (venv reused) {med(times['same'])}")
    print(f"  venv step on the host, ensurepip + pip      {med(times['old'])}")
    faster = statistics.median(times["old"]) / statistics.median(times["venv"])
    print(f"  venv step on the host, --without-pip + own  {med(times['venv'])}   ({faster:.1f}x faster)")
    print(f"  warm `bundle`, 3 targets (3.9, 3.11, 3.12)  {med(times['bundle'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
