"""The one program integrator runs as root on a remote host before its own code (HOST-SIDE).

Standard library only, Python >= 3.9, and never imported there: the client sends this file's
source (`python3 -I -c SOURCE PLAN`, built by `host/remote.py` `stager_argv`) with the uploads on
stdin, in the same ssh connection that runs the verb. So nothing runs as root from a path that a
local user could have written, and nothing is ever read twice from a place it could be swapped:

1. Every directory from `/` down to the plan's root must be a real directory (no symlink) owned
   by root and writable by root alone; the root and its `tool` and `staging` directories are
   created 0700 if missing and must be root-only. Anything else is refused with one line.
2. The cached host tool is read into memory and its sha256 compared with the plan's; a missing or
   different copy is replaced by the one on stdin, or reported (exit 100) so the client sends it.
3. Each upload (a bundle, secrets) is read from stdin into a fresh mkdtemp below `staging`, 0600,
   and its sha256 compared with the plan's.
4. The tool's verified bytes are written into that private directory and run from there, in this
   process; the directory is removed afterwards, whatever happens.

Errors are printed as the `--json` error object the client already reads (`result_from_json`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import runpy
import shutil
import signal
import stat
import sys
import tempfile
import time
from typing import IO, Any

TOOL_MISSING = 100  # exit code: the tool is not cached here; send it
STALE_SECONDS = 24 * 3600  # staging left by a process killed outright is removed after a day
TOOL_DAYS = 30  # other integrator versions' tools are kept this long
_CHUNK = 1 << 20


class Refused(Exception):
    """A check failed: nothing was run."""


def unsafe(path: str, st: os.stat_result, private: bool) -> str | None:
    """Why root may not trust directory `path` (None when it may): `private` ones are root's alone."""
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        return f"{path} has mode {mode:04o}: writable by others than root"
    if private and mode & 0o077:
        return f"{path} has mode {mode:04o}, not 0700"
    return None


def ancestors(path: str) -> list[str]:
    """`/`, then every directory above `path`: `/var/cache/x` -> ['/', '/var', '/var/cache']."""
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def ensure_root_only(root: str, subdirs: list[str]) -> None:
    """Check the chain above `root`, then create (0700) and check `root` and its `subdirs`."""
    if not os.path.isabs(root) or os.path.normpath(root) != root:
        raise Refused(f"{root!r}: not a plain absolute path")
    for path in ancestors(root):
        try:
            why = unsafe(path, os.lstat(path), private=False)
        except FileNotFoundError:
            why = f"{path} does not exist"
        if why:
            raise Refused(
                f"refusing to run as root from {root}: {why}; make {path} a directory owned by root "
                "and writable by root alone, then retry"
            )
    for path in [root] + [os.path.join(root, d) for d in subdirs]:
        with contextlib.suppress(FileExistsError):  # checked below, whoever made it
            os.mkdir(path, 0o700)
        why = unsafe(path, os.lstat(path), private=True)
        if why:
            raise Refused(
                f"refusing to run as root from {root}: {why}; check who made it, remove it as root "
                f"(rm -rf {root}), then retry"
            )


def plain_name(name: str) -> str:
    """A file name for the private directories: no path, nothing hidden behind it."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise Refused(f"{name!r}: not a plain file name")
    return name


def receive(stream: IO[bytes], size: int, out: IO[bytes] | None = None) -> tuple[str, bytes]:
    """Exactly `size` bytes from `stream` (into `out`, else kept): their sha256, and them if kept."""
    digest, kept, left = hashlib.sha256(), [], size
    while left > 0:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            raise Refused(f"the upload ended {left} bytes early (connection lost?)")
        digest.update(chunk)
        left -= len(chunk)
        if out is None:
            kept.append(chunk)
        else:
            out.write(chunk)
    return digest.hexdigest(), b"".join(kept)


def cached_tool(path: str, sha256: str) -> bytes | None:
    """The cached tool's bytes when they hash to `sha256`; None when absent, a symlink or different."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        data = fh.read()
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def write_new(path: str, data: bytes | None = None) -> IO[bytes]:
    """A new 0600 file that did not exist (no symlink followed), open for writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    fh = os.fdopen(fd, "wb")
    if data is not None:
        fh.write(data)
    return fh


def store_tool(tool_dir: str, name: str, data: bytes, now: float) -> None:
    """Cache the verified tool: a new file renamed over the old name, so a reader sees one or the
    other. Other versions cached more than TOOL_DAYS ago go (sent again if still in use)."""
    fd, tmp = tempfile.mkstemp(dir=tool_dir, prefix=".new-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, os.path.join(tool_dir, name))
    for entry in os.scandir(tool_dir):
        if entry.name != name and now - entry.stat(follow_symlinks=False).st_mtime > TOOL_DAYS * 86400:
            os.unlink(entry.path)


def remove_stale(staging_root: str, now: float) -> None:
    for entry in os.scandir(staging_root):
        if now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def tool_bytes(plan: dict[str, Any], tool_dir: str, stdin: IO[bytes]) -> bytes | None:
    """The tool, verified: from stdin when sent (then cached), else from the cache; None: not here."""
    tool = plan["tool"]
    name = plain_name(tool["name"])
    if not tool["sent"]:
        return cached_tool(os.path.join(tool_dir, name), tool["sha256"])
    digest, data = receive(stdin, tool["size"])
    if digest != tool["sha256"]:
        raise Refused(f"the host tool arrived with sha256 {digest}, not {tool['sha256']}")
    if cached_tool(os.path.join(tool_dir, name), digest) is None:
        store_tool(tool_dir, name, data, time.time())
    return data


def stage(plan: dict[str, Any], staging: str, stdin: IO[bytes]) -> None:
    """Each upload into `staging` (0600), refused unless it hashes as the plan says."""
    for upload in plan["uploads"]:
        name = plain_name(upload["name"])
        with write_new(os.path.join(staging, name)) as out:
            digest, _ = receive(stdin, upload["size"], out)
        if digest != upload["sha256"]:
            raise Refused(f"upload {name} arrived with sha256 {digest}, not {upload['sha256']}")


def tool_argv(plan: dict[str, Any], staging: str) -> list[str]:
    """The verb's arguments; `[prefix, name]` stands for prefix + the staged path of upload `name`."""
    return [a if isinstance(a, str) else a[0] + os.path.join(staging, plain_name(a[1])) for a in plan["argv"]]


def run_tool(path: str, argv: list[str]) -> int:
    """Run the tool's __main__ here, as `python3 TOOL ARGV` would; its exit code."""
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _answer(error: str, exit_code: int, **extra: object) -> int:
    print(json.dumps({"ok": False, "exit_code": exit_code, "error": error, **extra}))
    return exit_code


def main(argv: list[str]) -> int:
    os.umask(0o077)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # end like Ctrl-C: the staging is removed
        signal.signal(signum, _interrupt)
    plan = json.loads(argv[0])
    root = plan["root"]
    tool_dir, staging_root = os.path.join(root, "tool"), os.path.join(root, "staging")
    stdin = sys.stdin.buffer
    try:
        ensure_root_only(root, ["tool", "staging"])
        remove_stale(staging_root, time.time())
        data = tool_bytes(plan, tool_dir, stdin)
        if data is None:
            return _answer("the host tool is not cached here", TOOL_MISSING, tool_missing=True)
        staging = tempfile.mkdtemp(dir=staging_root, prefix="run-")
        try:
            stage(plan, staging, stdin)
            tool = os.path.join(staging, plain_name(plan["tool"]["name"]))
            write_new(tool, data).close()
            return run_tool(tool, tool_argv(plan, staging))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except Refused as exc:
        return _answer(str(exc), 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
