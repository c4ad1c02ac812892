"""Where host commands act: this machine, a sandbox host, or one host over ssh.

All real work happens in one code path, the local one, running on the host itself. A remote
target copies a small *host tool* there (this integrator package without its build-only parts,
zipped in memory, cached on the host by content hash) and runs
`python3 integrator-host-<sha>.pyz --json VERB ... --local`, then turns the JSON back into a
Result. The tool is used for every verb, deploy included, rather than the last bundle kept on
the host: it exists before the first deploy and after a failed one, `doctor` and `uninstall`
work on any host, and the code that acts is always the version the operator is running.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Union

from ..errors import HostError, IntegratorError
from ..result import Result
from .system import System

REMOTE_DIR = PurePosixPath("/var/tmp/integrator")
# Build-side parts the host never imports: kept out of the host tool.
EXCLUDED_PACKAGES = ("template", "sandbox", "fleet")
TOOL_MAIN = "import sys\nfrom integrator.cli import main\nsys.exit(main())\n"


class RemoteError(IntegratorError):
    """An error reported by integrator on the remote host, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class LocalTarget:
    """This machine: host code runs in this process."""

    system: System = field(default_factory=System)

    def describe(self) -> str:
        return "this machine"


class RemoteTarget:
    """A host reached by running commands on it; subclasses say how."""

    def describe(self) -> str:
        raise NotImplementedError

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        raise NotImplementedError

    def put(self, src: Path, dest: PurePosixPath) -> None:
        raise NotImplementedError

    def attach_argv(self, argv: Sequence[str]) -> list[str]:
        """A local command line that runs `argv` on the host with our stdio (logs --follow)."""
        raise NotImplementedError

    # --- the host tool ---------------------------------------------------------------------
    def invoke(self, args: Sequence[str], *, timeout: float = 900) -> Result:
        """Run `integrator --json ARGS --local` on the host and rebuild its Result."""
        tool = self.ensure_tool()
        proc = self.run(["python3", str(tool), "--json", *args, "--local"], timeout=timeout)
        return result_from_json(proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))

    def ensure_tool(self) -> PurePosixPath:
        data, digest = host_tool()
        remote = REMOTE_DIR / f"integrator-host-{digest[:16]}.pyz"
        if self.run(["test", "-s", str(remote)]).returncode != 0:
            self.run_checked(["install", "-d", "-m", "0700", str(REMOTE_DIR)])
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / remote.name
                local.write_bytes(data)
                self.put(local, remote)
        return remote

    def run_checked(self, argv: Sequence[str]) -> None:
        proc = self.run(argv)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise HostError(f"{self.describe()}: {shlex.join(argv)} failed: {err}")


@dataclass(frozen=True)
class SandboxTarget(RemoteTarget):
    """A sandbox host made by `integrator sandbox create NAME`."""

    name: str

    def _box(self) -> Any:
        from .. import sandbox

        return sandbox.get(self.name)

    def describe(self) -> str:
        return f"sandbox {self.name}"

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        return self._box().exec(list(argv), check=False, timeout=timeout)

    def put(self, src: Path, dest: PurePosixPath) -> None:
        self._box().copy_in(src, str(dest))

    def attach_argv(self, argv: Sequence[str]) -> list[str]:
        return list(self._box().exec_argv(list(argv)))


@dataclass(frozen=True)
class SshTarget(RemoteTarget):
    """One real host through the system's ssh/scp; a non-root user goes through `sudo -n`."""

    destination: str  # user@host

    def describe(self) -> str:
        return f"ssh {self.destination}"

    def _remote_argv(self, argv: Sequence[str]) -> list[str]:
        user = self.destination.split("@", 1)[0] if "@" in self.destination else ""
        prefix = [] if user == "root" else ["sudo", "-n"]
        # ssh hands one string to the remote shell: quote every argument.
        return ["ssh", "-o", "BatchMode=yes", self.destination, "--", shlex.join([*prefix, *argv])]

    def run(self, argv: Sequence[str], *, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(self._remote_argv(argv), capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise HostError(f"{self.describe()}: no answer after {timeout:.0f} s") from None

    def put(self, src: Path, dest: PurePosixPath) -> None:
        """scp to a private temp name, then move into place as root (sudo-safe)."""
        tmp = f"/tmp/.integrator-{hashlib.sha256(str(dest).encode()).hexdigest()[:12]}"
        proc = subprocess.run(["scp", "-q", "-o", "BatchMode=yes", str(src), f"{self.destination}:{tmp}"],
                              capture_output=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise HostError(
                f"scp to {self.destination} failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        self.run_checked(["install", "-m", "0600", "-o", "root", "-g", "root", tmp, str(dest)])
        self.run(["rm", "-f", tmp])

    def attach_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ssh", "-t", *self._remote_argv(argv)[1:]]


Target = Union[LocalTarget, RemoteTarget]


def target_from_args(host: str | None = None, ssh: str | None = None) -> Target:
    """--host NAME → sandbox, --ssh USER@HOST → ssh, otherwise (--local) this machine."""
    if host:
        return SandboxTarget(host)
    if ssh:
        return SshTarget(ssh)
    return LocalTarget()


# --- the host tool ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def host_tool() -> tuple[bytes, str]:
    """This integrator package as a runnable zip (stdlib zipfile; fixed timestamps so the hash,
    and therefore the cached copy on each host, only changes when the code does)."""
    pkg = Path(__file__).resolve().parent.parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        _add(zf, "__main__.py", TOOL_MAIN.encode())
        for path in sorted(pkg.rglob("*")):
            rel = path.relative_to(pkg)
            if path.is_file() and _wanted(rel):
                _add(zf, f"integrator/{rel.as_posix()}", path.read_bytes())
    data = b"#!/usr/bin/env python3\n" + buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _wanted(rel: Path) -> bool:
    parts = rel.parts
    if "__pycache__" in parts or rel.suffix in (".pyc", ".pyo"):
        return False
    return not (len(parts) > 1 and parts[0] in EXCLUDED_PACKAGES)


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def result_from_json(stdout: str, stderr: str) -> Result:
    """The remote `--json` object back into a Result; a remote user error is raised as one here."""
    try:
        payload = json.loads(stdout)
    except ValueError:
        detail = (stderr.strip() or stdout.strip())[-2000:]
        raise HostError(f"the host's integrator did not answer with JSON: {detail}") from None
    exit_code = int(payload.get("exit_code", 1))
    if "error" in payload and not payload.get("ok", False):
        raise RemoteError(str(payload["error"]), exit_code)
    lines = [str(line) for line in payload.pop("lines", [])]
    warnings = [str(w) for w in payload.pop("warnings", [])]
    for key in ("ok", "exit_code"):
        payload.pop(key, None)
    return Result(lines=lines, data=payload, exit_code=exit_code, warnings=warnings)
