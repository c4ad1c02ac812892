"""How one verb runs as root on a remote host: checked, staged, verified and run in one connection.

The builders here are pure (a plan, an argv) and the only I/O is `exchange`, which runs one local
command (ssh, or nsenter for a sandbox) with the uploads streamed to its stdin. What happens on
the host is `stager.py`, sent as source text: no file in a world-writable directory, nothing run
or read as root before its directory chain and its sha256 are checked. See docs/security.md,
"Remote targets".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import EnvironmentProblem, HostError
from ..host import stager
from ..host.stager import TOOL_MISSING
from ..layout import REMOTE_ROOT
from ..verbtable import Arg

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Upload:
    """A local file to stage on the host under `name`, refused there unless it hashes to `sha256`."""

    name: str
    path: Path
    sha256: str
    size: int

    @classmethod
    def of(cls, name: str, path: Path) -> Upload:
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        return cls(name, path, digest.hexdigest(), size)


def tool_name(digest: str) -> str:
    return f"integrator-host-{digest[:16]}.pyz"


def stage_plan(
    tool_digest: str,
    tool_size: int,
    send_tool: bool,
    uploads: Sequence[Upload],
    argv: Sequence[Arg],
    root: PurePosixPath = REMOTE_ROOT,
) -> dict[str, object]:
    """What the stager checks, expects on stdin (tool if sent, then each upload) and runs."""
    return {
        "root": str(root),
        "tool": {"name": tool_name(tool_digest), "sha256": tool_digest, "size": tool_size, "sent": send_tool},
        "uploads": [{"name": u.name, "sha256": u.sha256, "size": u.size} for u in uploads],
        "argv": [a if isinstance(a, str) else list(a) for a in argv],
    }


def stager_source() -> str:
    return Path(stager.__file__).read_text(encoding="utf-8")


def stager_argv(plan: dict[str, object]) -> list[str]:
    """One isolated Python (-I: no PYTHON* variables, no user site, not the working directory)."""
    return ["python3", "-I", "-c", stager_source(), json.dumps(plan, sort_keys=True, separators=(",", ":"))]


def stdin_parts(tool: bytes | None, uploads: Sequence[Upload]) -> Iterator[bytes]:
    """The bytes the stager reads, in its order: the tool when sent, then each upload."""
    if tool is not None:
        yield tool
    for upload in uploads:
        with open(upload.path, "rb") as fh:
            yield from iter(lambda: fh.read(1 << 20), b"")


def is_tool_missing(proc: subprocess.CompletedProcess[bytes]) -> bool:
    """The stager's answer 'the tool is not cached here': send it and ask again."""
    if proc.returncode != TOOL_MISSING:
        return False
    try:
        return json.loads(proc.stdout).get("tool_missing") is True
    except ValueError:
        return False


def _next_chunk(parts: Iterator[bytes]) -> bytes:
    """The next non-empty chunk, or b"" at the end."""
    return next((chunk for chunk in parts if chunk), b"")


def exchange(
    argv: Sequence[str],
    parts: Iterator[bytes],
    timeout: float,
    what: str,
    on_stdout: Callable[[bytes], None] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` here, stream `parts` to its stdin while collecting its output; a deadline for all.

    If the far end stops reading (it refused, or exited early), the rest is not sent: its
    answer says why. `on_stdout` sees each piece of stdout as it arrives (live progress)."""
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        hint = " (install openssh-client)" if argv[0] == "ssh" else ""
        raise EnvironmentProblem(f"{argv[0]}: not found on this machine{hint}") from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    out: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    pending = _next_chunk(parts)
    with selectors.DefaultSelector() as sel:
        for fd in out:
            sel.register(fd, selectors.EVENT_READ)
        if pending:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        try:
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HostError(f"{what}: no answer after {timeout:.0f} s")
                for key, _events in sel.select(left):
                    if key.fd in out:
                        chunk = os.read(key.fd, _CHUNK)
                        if chunk:
                            out[key.fd].append(chunk)
                            if on_stdout is not None and key.fd == proc.stdout.fileno():
                                on_stdout(chunk)
                        else:
                            sel.unregister(key.fd)
                        continue
                    try:
                        pending = pending[os.write(key.fd, pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the far end stopped reading: its answer says why
                        pending, parts = b"", iter(())
                    pending = pending or _next_chunk(parts)
                    if not pending:
                        sel.unregister(key.fd)
                        proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    try:
        code = proc.wait(max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        raise HostError(f"{what}: no answer after {timeout:.0f} s") from None
    stdout, stderr = (b"".join(chunks) for chunks in out.values())
    return subprocess.CompletedProcess(list(argv), code, stdout, stderr)
