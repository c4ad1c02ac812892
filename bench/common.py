"""What the benchmarks share: template services, bundles, one disposable host, small helpers.

Everything goes through integrator's own API (template `new`, `bundle`, host `deploy`,
`integrator.sandbox`). `disposable_host` destroys its host however the block ends: an
exception, Ctrl-C, or SIGTERM (turned into KeyboardInterrupt while it runs).
"""

from __future__ import annotations

import json
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpload  # bench/httpload.py, next to this file

from integrator import sandbox
from integrator.bundle.commands import bundle
from integrator.host.deploy_options import DeployOptions
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from integrator.template.commands import new

PY, MACHINE = "3.11", "x86_64"  # the sandbox hosts' python3 (Debian 12)


def new_service(name: str, dest: Path) -> Path:
    """`integrator new NAME DEST`: the Flask template at version 0.1.0."""
    result = new(name, dest)
    if result.exit_code != 0:
        raise SystemExit("\n".join(result.lines))
    return dest


def build(src: Path, out: Path) -> Path:
    """`integrator bundle` for the sandbox hosts' Python; the .pyz's path."""
    result = bundle(src, pythons=[PY], platforms=[MACHINE], output=out, sign_key=None)
    if result.exit_code != 0:
        raise SystemExit("\n".join(result.lines))
    return next(out.glob("*.pyz"))


def set_version(src: Path, name: str, old: str, version: str) -> None:
    """Bump the version where a service keeps it (as the e2e tests do for a second release)."""
    for rel in ("service.toml", "pyproject.toml", f"src/{name}/__init__.py"):
        path = src / rel
        path.write_text(path.read_text().replace(f'"{old}"', f'"{version}"'))


def build_versions(name: str, work: Path, count: int) -> list[Path]:
    """Bundles of NAME 0.1.0, 0.2.0, ... (`count` of them): each deploy installs a new release."""
    src = new_service(name, work / name)
    bundles, old = [], "0.1.0"
    for i in range(count):
        version = f"0.{i + 1}.0"
        set_version(src, name, old, version)
        bundles.append(build(src, work / "dist" / version))
        old = version
    return bundles


def deploy(box: sandbox.Sandbox, pyz: Path) -> None:
    """`integrator deploy PYZ --host BOX`; a failed deploy ends the benchmark."""
    result = commands.deploy(DeployOptions(pyz), SandboxTarget(box.name))
    if result.exit_code != 0:
        raise SystemExit("deploy failed:\n" + "\n".join(result.lines))


def served_version(address: str, host: str) -> str:
    """The version GET / reports through nginx (HTTPS, Host: `host`), or `HTTP <status>`."""
    conn = httpload.https_connect(address, host)()
    try:
        conn.request("GET", "/", headers={"Host": host, "Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        return str(json.loads(body)["version"]) if resp.status == 200 else f"HTTP {resp.status}"
    finally:
        conn.close()


def wait_serving(address: str, host: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return served_version(address, host)
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def ratio(a: float, b: float) -> str:
    if b:
        return f"{a / b:.2f}x"
    return "both 0" if not a else "inf (the other is 0)"


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def disposable_host(prefix: str) -> Iterator[sandbox.Sandbox]:
    """A fresh sandbox host named PREFIX + 6 hex digits, always destroyed afterwards."""
    # Ctrl-C even when started with SIGINT ignored (a background job of a script); SIGTERM alike.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    name = f"{prefix}{secrets.token_hex(3)}"
    try:
        box = sandbox.create(name)  # a failed create removes what it made
        try:
            print(f"host {name} at {box.address}", flush=True)
            yield box
        finally:
            sandbox.destroy(name)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
