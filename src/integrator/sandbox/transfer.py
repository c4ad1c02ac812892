"""Copying files into and out of a running host as tar streams through nsenter.

The tar runs inside the host, so paths resolve in the host's own mount namespace (its /tmp and
/run are not visible from here) and absolute symlinks inside never point at this machine's files.
`dest` is always the full path of the copy, never a directory to put it in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import HostError, UsageError
from .procs import inside_argv, tail

# Python >= 3.12 (and security backports) can refuse members escaping the destination.
EXTRACT_FILTER: dict[str, Any] = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
EXTRACT_IN = 'mkdir -p "$1" && exec tar --numeric-owner -xpf - -C "$1"'


def inside_path(path: str) -> PurePosixPath:
    """An absolute path inside the host with a real last component."""
    p = PurePosixPath(path)
    if not p.is_absolute() or p.name in ("", ".", ".."):
        raise UsageError(f"{path!r}: give an absolute path inside the host, below /")
    return p


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def copy_in(leader: int, src: Path, dest: str, *, label: str, timeout: float = 600) -> None:
    """Copy the file or tree `src` from this machine to `dest` in the host, owned by root there."""
    target = inside_path(dest)
    if not (src.exists() or src.is_symlink()):
        raise UsageError(f"{src}: no such file or directory")
    argv = inside_argv(leader, ["/bin/sh", "-c", EXTRACT_IN, "sh", str(target.parent)])
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
        )
        assert proc.stdin is not None
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.add(str(src), arcname=target.name, filter=_as_root)
        except BrokenPipeError:
            pass  # tar inside gave up; its exit code and stderr say why
        finally:
            _close(proc.stdin)
        _finish(proc, errors, timeout, f"{label}: copy {src} -> {dest}")


def copy_out(leader: int, src: str, dest: Path, *, label: str, timeout: float = 600) -> None:
    """Copy the file or tree `src` in the host to `dest` on this machine (numeric owners kept)."""
    source = inside_path(src)
    argv = inside_argv(leader, ["tar", "--numeric-owner", "-cf", "-", "-C", str(source.parent), source.name])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, start_new_session=True
        )
        assert proc.stdout is not None
        what = f"{label}: copy {src} -> {dest}"
        try:
            _extract_renamed(proc.stdout, source.name, dest)
        except tarfile.ReadError:
            proc.wait(timeout)  # most likely nothing was sent: tar inside failed
            _finish(proc, errors, timeout, what)
            raise HostError(f"{what}: unreadable tar stream") from None
        finally:
            _close(proc.stdout)
        _finish(proc, errors, timeout, what)


def _extract_renamed(stream: IO[bytes], old: str, dest: Path) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            member.name = _rename(member.name, old, dest.name)
            if member.islnk():
                member.linkname = _rename(member.linkname, old, dest.name)
            tar.extract(member, str(dest.parent), numeric_owner=True, **EXTRACT_FILTER)


def _rename(name: str, old: str, new: str) -> str:
    if name == old or name.startswith(old + "/"):
        return new + name[len(old) :]
    raise HostError(f"unexpected path {name!r} in the tar stream (expected {old!r}/...)")


def _close(stream: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        stream.close()


def _finish(proc: subprocess.Popen[bytes], errors: IO[bytes], timeout: float, what: str) -> None:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise HostError(f"{what}: timed out after {timeout:g} s") from None
    if rc != 0:
        errors.seek(0)
        raise HostError(f"{what}: exit code {rc}\n{tail(errors.read())}".rstrip())
