"""Choose a bundle's lock for this host and build a release venv from it, offline (HOST-SIDE).

The install never consults an index or a directory: the lock is parsed again here
(lockfile.parse_lock: pins only) and pip gets a requirements file of wheel *paths*, each
pinned by hash (`--require-hashes`), with `--no-index`, no `--find-links` and
`--only-binary :all:`, so it has no sdist to find and nothing to build; no configuration of
the host's (pip.conf, PIP_* variables) can point it elsewhere. `--no-deps` is safe because
each lock is pip's own complete resolution for that target, made at build time; it also
means no resolver runs on the host.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import HostError
from .lockfile import MAX_LOCK_BYTES, match_wheels, parse_lock, requirements_text, wheelhouse_files
from .manifest import Manifest

# `platform.machine()` spellings -> the names bundles use.
_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
_TIMEOUT = 900
# Written into the venv: the exact wheel files pip was given (also a record of what was installed).
REQUIREMENTS = "integrator-requirements.txt"


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


def pip_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The host's environment without anything that steers pip or Python elsewhere."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("PIP_", "PYTHON"))
    }
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,  # pip then reads no config file at all
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    return env


def venv_command(python: str, venv_dir: Path) -> list[str]:
    return [python, "-m", "venv", str(venv_dir)]


def install_command(venv_dir: Path, requirements: Path) -> list[str]:
    """pip with no source of packages but the wheel paths in `requirements` (no index, no --find-links)."""
    return [
        str(venv_dir / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--isolated",
        "--no-index",
        "--require-hashes",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--no-cache-dir",
        "-r",
        str(requirements),
    ]


def install_requirements(wheelhouse: Path, lock: Path) -> str:
    """The lock checked again on the host (pins only, each matched to a wheel by hash), as pip input."""
    with open(lock, "rb") as fh:
        pins = parse_lock(fh.read(MAX_LOCK_BYTES + 1), str(lock))
    digests = wheelhouse_files(wheelhouse)
    return requirements_text(wheelhouse, match_wheels(pins, digests, str(lock)).values(), digests)


def build_venv(venv_dir: Path, wheelhouse: Path, lock: Path, python: str = sys.executable) -> None:
    """Create `venv_dir` with `python` and install exactly the wheels `lock` pins, offline.

    A release's venv is made once and never changed, so an existing non-empty directory is
    refused rather than reused. Files are world-readable (umask 022) whatever root's umask.
    """
    if venv_dir.exists() and any(venv_dir.iterdir()):
        raise HostError(f"{venv_dir}: already exists; a release venv is built once, in a new directory")
    for path in (wheelhouse, lock):
        if not path.exists():
            raise HostError(f"{path}: missing (extract the bundle with extract_verified first)")
    requirements = install_requirements(wheelhouse, lock)  # before anything is created
    env = pip_env()
    out = _run(venv_command(python, venv_dir), env, f"{python} -m venv {venv_dir}")
    if out is not None:
        raise HostError(_venv_failure(python, out))
    (venv_dir / REQUIREMENTS).write_text(requirements)
    out = _run(install_command(venv_dir, venv_dir / REQUIREMENTS), env, f"pip install -r {lock}")
    if out is not None:
        raise HostError(f"installing {lock.name} into {venv_dir} failed: {pip_error(out)}")


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


def _venv_failure(python: str, output: str) -> str:
    """Debian splits venv/ensurepip into python3-venv: name the package to install."""
    if "ensurepip" in output:
        package = "python3-venv"
        for word in output.split():
            if word.startswith("python3") and word.endswith("-venv"):
                package = word
        return f"{python} cannot create a venv: ensurepip is missing; install the {package} package"
    return f"{python} -m venv failed: {last_line(output)}"


def pip_error(output: str) -> str:
    """pip's first ERROR line (the cause; later ones restate it), else its last line."""
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]
    return errors[0] if errors else last_line(output)


def last_line(output: str) -> str:
    """What a failed tool said last, for a one-line error (its full output is not shown)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
