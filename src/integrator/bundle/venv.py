"""Choose a bundle's lock for this host and build a venv from it, offline (HOST-SIDE).

The install never consults an index or a directory: the lock is parsed again here
(lockfile.parse_lock: pins only), each pin is matched to a wheel of the wheelhouse by its
sha256, and only those wheel files are installed (`wheelinstall`: copied, never built, no
pip); the lock is a complete resolution for its target made at build time, so no resolver
runs on the host either.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import HostError
from .lockfile import MAX_LOCK_BYTES, match_wheels, parse_lock, wheelhouse_files
from .manifest import Manifest
from .wheelinstall import install_wheels

# `platform.machine()` spellings -> the names bundles use.
_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
_TIMEOUT = 900


def normalize_machine(machine: str) -> str:
    return _MACHINES.get(machine.lower(), machine.lower())


def host_glibc() -> str | None:
    """glibc version of this interpreter's C library, None on musl or when unknown."""
    lib, version = platform.libc_ver()
    return version if lib == "glibc" and version else None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def pick_target(manifest: Manifest, python_version: str, machine: str, glibc: str | None = None) -> str:
    """The lock (a member path, relative to the extraction dir) for this Python and machine.

    `python_version` may be "3.11" or "3.11.2"; `glibc`, when known, must be at least the
    newest glibc any chosen wheel needs. The error names what the bundle does cover, so the
    fix (another interpreter, or a rebuild with --python) is obvious.
    """
    py = ".".join(python_version.split(".")[:2])
    mach = normalize_machine(machine)
    for target in manifest.targets:
        if target.python != py or target.machine != mach:
            continue
        if glibc and target.glibc and _version_tuple(glibc) < _version_tuple(target.glibc):
            raise HostError(
                f"{manifest.name} {manifest.version}: wheels for Python {py} on {mach} need glibc "
                f">= {target.glibc}, this host has {glibc}"
            )
        return target.lock
    have = ", ".join(f"Python {t.python} on {t.machine}" for t in manifest.targets) or "nothing"
    raise HostError(
        f"{manifest.name} {manifest.version} has no build for this host's Python {py} on {mach} "
        f"(it has: {have}); rebuild it with `integrator bundle --python {py} --platform {mach}`"
    )


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The host's environment without anything that steers Python (PYTHON*) or pip (PIP_*)."""
    return {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("PIP_", "PYTHON"))
    }


def venv_command(python: str, venv_dir: Path) -> list[str]:
    """A bare venv: ensurepip (7 s of installing pip itself) is neither run nor needed."""
    return [python, "-m", "venv", "--without-pip", str(venv_dir)]


def compile_command(python: str, site: Path) -> list[str]:
    """Byte-compile what was installed: the service user cannot write __pycache__ in a root-owned
    venv, so without this every worker would compile every module at each start. `-I -S`: no
    site-packages and no `.pth` file of a wheel is read by this root process, only compiled."""
    return [python, "-I", "-S", "-m", "compileall", "-q", "-j", "0", str(site)]


def locked_wheel_digests(wheelhouse: Path, lock: Path) -> dict[str, str]:
    """The lock checked again on the host (pins only, each matched to a wheel by hash): the
    wheel file names to install, with their sha256."""
    with open(lock, "rb") as fh:
        pins = parse_lock(fh.read(MAX_LOCK_BYTES + 1), str(lock))
    digests = wheelhouse_files(wheelhouse)
    return {name: digests[name] for name in sorted(match_wheels(pins, digests, str(lock)).values())}


def locked_wheels(wheelhouse: Path, lock: Path) -> list[Path]:
    """The wheels the lock pins, by path (`locked_wheel_digests`)."""
    return [wheelhouse / name for name in locked_wheel_digests(wheelhouse, lock)]


def build_venv(venv_dir: Path, wheelhouse: Path, lock: Path, python: str = sys.executable) -> list[Path]:
    """Create `venv_dir` with `python` and install exactly the wheels `lock` pins, offline; the wheels.

    No pip: the venv is made `--without-pip` and the wheels are copied in by `wheelinstall`
    (their RECORD hashes checked), then byte-compiled. An existing non-empty directory is
    refused rather than reused. Files are world-readable (0644/0755) whatever root's umask.
    """
    if venv_dir.exists() and any(venv_dir.iterdir()):
        raise HostError(f"{venv_dir}: already exists; a venv is built once, in a new directory")
    for path in (wheelhouse, lock):
        if not path.exists():
            raise HostError(f"{path}: missing (extract the bundle with extract_verified first)")
    wheels = locked_wheels(wheelhouse, lock)  # before anything is created
    env = clean_env()
    out = _run(venv_command(python, venv_dir), env, f"{python} -m venv {venv_dir}")
    if out is not None:
        raise HostError(f"{python} -m venv --without-pip failed: {last_line(out)}")
    site = install_wheels(venv_dir, wheels)
    out = _run(compile_command(python, site), env, f"compileall {site}")
    if out is not None:
        raise HostError(f"byte-compiling {site} failed: {last_line(out)}")
    return wheels


def _run(argv: Sequence[str], env: Mapping[str, str], what: str) -> str | None:
    """Run quietly; None on success, else the combined output (for one-line error messages)."""
    try:
        proc = subprocess.run(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_TIMEOUT,
            check=False,
            umask=0o022,  # hardened hosts set 027/077 as root's umask; the service user must read the venv
        )
    except FileNotFoundError:
        raise HostError(f"{what}: {argv[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"{what}: still running after {_TIMEOUT} s, stopped") from None
    return None if proc.returncode == 0 else proc.stdout


def pip_error(output: str) -> str:
    """pip's first ERROR line (the cause; later ones restate it), else its last line."""
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]
    return errors[0] if errors else last_line(output)


def last_line(output: str) -> str:
    """What a failed tool said last, for a one-line error (its full output is not shown)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
