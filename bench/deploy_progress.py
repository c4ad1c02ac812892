"""Live progress over ssh: when the first step line appears, and what ssh costs a deploy.

One disposable host, reached both ways: as a sandbox target (`--host`, nsenter) and over ssh
(`--ssh root@ADDRESS`, its own sshd, a throwaway key, an ssh config in a temporary directory;
this machine's ~/.ssh is not read). Each round deploys a new version of the same service once
each way, the order alternating, each through the real command line with `--json-lines`, and
records when the first line arrived, when the host's first step arrived, and the total.
Prints medians and the ssh / sandbox ratio (issue 10 item 7: first line <= 2 s, ssh <= 1.5x).

    .venv/bin/python bench/deploy_progress.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import build_versions, disposable_host, ratio

from integrator.sandbox import Sandbox

NAME = "progress"
CLI = [sys.executable, "-m", "integrator.cli"]
OPERATOR_STEPS = ("send",)  # printed by the operator's integrator before the host answers


def ssh_config(box: Sandbox, work: Path) -> Path:
    """Root may log in with a throwaway key; the host key read from inside the host."""
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    box.exec(["install", "-d", "-m", "0700", "/root/.ssh"])
    box.copy_in(key.with_name("id_ed25519.pub"), "/root/.ssh/authorized_keys")
    box.exec(["chmod", "0600", "/root/.ssh/authorized_keys"])
    box.exec(["systemctl", "start", "ssh"])
    keytype, blob = box.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.decode().split()[:2]
    (work / "known_hosts").write_text(f"{box.address} {keytype} {blob}\n")
    config = work / "ssh_config"
    config.write_text(
        textwrap.dedent(f"""\
            Host *
              IdentityFile {key}
              IdentitiesOnly yes
              UserKnownHostsFile {work / "known_hosts"}
              GlobalKnownHostsFile /dev/null
              StrictHostKeyChecking yes
              ConnectTimeout 10
            """)
    )
    return config


def timed_deploy(pyz: Path, target: list[str], env: dict[str, str]) -> dict[str, float]:
    """`integrator deploy PYZ TARGET --json-lines`: seconds to the first line, to the host's first
    step, and to the end (a failed deploy ends the benchmark)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, "deploy", str(pyz), *target, "--json-lines"], stdout=subprocess.PIPE, env=env, text=True
    )
    first = host_first = 0.0
    last: dict[str, object] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic() - start
        last = json.loads(line)
        first = first or now
        if last.get("event") == "step" and last.get("step") not in OPERATOR_STEPS:
            host_first = host_first or now
    code = proc.wait(600)
    if code != 0 or last.get("ok") is not True:
        raise SystemExit(f"deploy {pyz.name} {' '.join(target)} failed: {last}")
    return {"first line": first, "first host step": host_first, "total": time.monotonic() - start}


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rounds", type=int, default=3, help="deploys each way (default 3)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="bench-progress-") as tmp:
        work = Path(tmp)
        bundles = build_versions(NAME, work, 2 * rounds + 1)
        with disposable_host("d2b") as box:
            env = {**os.environ, "INTEGRATOR_SSH_CONFIG": str(ssh_config(box, work))}
            ways = {"sandbox": ["--host", box.name], "ssh": ["--ssh", f"root@{box.address}"]}
            timed_deploy(bundles[0], ways["sandbox"], env)  # first deploy: user, dirs, venv cache
            runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
            pyz = iter(bundles[1:])
            for n in range(rounds):
                order = list(ways) if n % 2 == 0 else list(reversed(ways))
                for way in order:
                    runs[way].append(timed_deploy(next(pyz), ways[way], env))
                    took = {k: round(v, 2) for k, v in runs[way][-1].items()}
                    print(f"round {n + 1} {way:8}", took, flush=True)
    print(f"\nmedians over {rounds} rounds (seconds; each deploy a new release of {NAME}):")
    keys = ("first line", "first host step", "total")
    print(f"{'':10}" + "".join(f"{k:>18}" for k in keys))
    med = {way: {k: statistics.median(r[k] for r in runs[way]) for k in keys} for way in runs}
    for way in runs:
        print(f"{way:10}" + "".join(f"{med[way][k]:18.2f}" for k in keys))
    print(f"ssh / sandbox total: {ratio(med['ssh']['total'], med['sandbox']['total'])} (goal <= 1.5x)")
    print(f"ssh first line: {med['ssh']['first line']:.2f} s (goal <= 2 s); "
          f"first host step {med['ssh']['first host step']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
