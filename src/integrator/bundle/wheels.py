"""Every dependency's wheel for each target, by pip's own resolution, in one wheelhouse.

Resolution is pip's own (`pip download --only-binary=:all:` with a target Python, ABI and
platform list), run once per target on the build machine; the lock it yields is installed
with `--no-deps --require-hashes` on the host, so no resolver ever runs there.

pip evaluates environment markers (`python_version < "3.10"`) against the interpreter it
runs on, not the `--python-version` it is given (pypa/pip#11010): bundling for 3.9 from 3.11
would silently drop `importlib-metadata`, which Flask needs on 3.9. So pip runs with its
marker environment set to the target's, and `locks.check_closure` proves every lock complete.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BundleError
from .locks import TargetLock, check_closure, pin_of, wheel_metadata
from .targets import MAX_GLIBC, TargetSpec, admits
from .venv import pip_error

Progress = Callable[[str], None]

_TIMEOUT = 1800
_PARALLEL = 4
ALWAYS = ("gunicorn",)  # every bundle runs under gunicorn

# pip with its marker environment replaced by the target's (see the module docstring).
_PIP_FOR_TARGET = """\
import json, sys
from pip._vendor.packaging import markers
if not callable(getattr(markers, "default_environment", None)):
    sys.exit("integrator: this pip cannot evaluate markers for another Python; upgrade pip")
_override = json.loads(sys.argv[1])
_host_environment = markers.default_environment
def _target_environment():
    env = dict(_host_environment())
    env.update(_override)
    return env
markers.default_environment = _target_environment
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def run_pip(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pip quietly: its output is parsed into one-line errors, never shown as is."""
    try:
        return subprocess.run(
            list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BundleError(f"pip did not finish within {_TIMEOUT} s: {' '.join(args[:4])} ...") from None


# --- dependency wheels per target ---------------------------------------------------------


def download_command(
    target: TargetSpec,
    app_wheel: Path | None,
    requirements: Path | None,
    dest: Path,
    *,
    extra: Sequence[str] = ALWAYS,
) -> list[str]:
    """pip download for `target`: the app wheel, `extra` (gunicorn) and the requirements file."""
    args = ["download", "--only-binary=:all:", "--python-version", target.python, "--implementation", "cp"]
    args += ["--abi", target.abi]
    for platform in target.platforms():
        args += ["--platform", platform]
    args += ["--dest", str(dest), "--progress-bar", "off", "--no-input", "--disable-pip-version-check"]
    args += [*([str(app_wheel)] if app_wheel else []), *extra]
    if requirements is not None:
        args += ["-r", str(requirements)]
    return [sys.executable, "-c", _PIP_FOR_TARGET, json.dumps(target.marker_env(), sort_keys=True), *args]


def download_target(
    target: TargetSpec, app_wheel: Path, requirements: Path | None, dest: Path, cwd: Path
) -> list[Path]:
    """pip's resolution of app + gunicorn (+ requirements.txt) for `target`, as wheel files."""
    dest.mkdir(parents=True)
    proc = run_pip(download_command(target, app_wheel, requirements, dest), cwd=cwd)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        needs = python_needs(output, target, dest.parent / f"{target.tag}-probe", cwd)
        raise BundleError(download_error(output, target, needs))
    if not (dest / app_wheel.name).exists():  # pip copies local files it resolved; be sure
        shutil.copyfile(app_wheel, dest / app_wheel.name)
    others = [p.name for p in dest.iterdir() if not p.name.endswith(".whl")]
    if others:
        raise BundleError(f"{target.tag}: pip downloaded non-wheel files: {', '.join(sorted(others))}")
    return sorted(dest.glob("*.whl"))


def download_error(output: str, target: TargetSpec, needs: Needs | None = None) -> str:
    """pip's many lines -> one that names the package and the target (and its Requires-Python)."""
    if needs is not None:
        name, version, requires = needs
        return (
            f"{name} {version} needs Requires-Python {requires}: target {target.tag} is CPython "
            f"{target.python}; drop the {target.python} target (--python) or pin a version of {name} "
            "that supports it"
        )
    match = re.search(r"No matching distribution found for (\S+)", output) or re.search(
        r"satisfies the requirement (\S+)", output
    )
    if match:
        return (
            f"no usable wheel of {match.group(1)} for {target.tag} (CPython {target.python}, "
            f"{target.machine}, glibc <= {MAX_GLIBC[0]}.{MAX_GLIBC[1]}, or pure Python): "
            "pin a version that has one, or drop that target"
        )
    return f"{target.tag}: pip download failed: {pip_error(output)}"


Needs = tuple[str, str, str]  # (package, version, its Requires-Python)


def python_needs(output: str, target: TargetSpec, probe: Path, cwd: Path) -> Needs | None:
    """The package, version and Requires-Python behind a refusal caused by Requires-Python, or None.

    pip says it two ways. From files it was given: "Packages require a different Python. 3.9.0
    not in: '>=3.10' (required by NAME 2.0 ...)", which names it. From an index: "Ignored the
    following versions that require a different python version: ..." (every package's, unnamed)
    and "No matching distribution found for NAME": then the newest wheel of NAME for the target,
    Requires-Python ignored, says what it needs.
    """
    required = re.search(r"not in:\s*'([^']*)' \(required by (\S+) (\S+)", output)
    if required:
        needs, name, version = required.groups()
        return name, version, needs
    missing = re.search(r"No matching distribution found for (\S+)", output)
    if not missing or "require a different python version" not in output:
        return None
    extra = ["--no-deps", "--ignore-requires-python", missing.group(1)]
    run_pip(download_command(target, None, None, probe, extra=extra), cwd=cwd)
    for wheel in sorted(probe.glob("*.whl")):
        meta = wheel_metadata(wheel)
        needs = str(meta["Requires-Python"] or "")
        if needs and not admits(needs, target.python):
            return str(meta["Name"]), str(meta["Version"]), needs
    return None


# --- the whole wheelhouse -------------------------------------------------------------------


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path  # one shared directory: a wheel several targets use is stored once
    app_wheel: str
    locks: tuple[TargetLock, ...]

    def wheels(self) -> list[Path]:
        return sorted(self.directory.glob("*.whl"))


def collect_wheels(
    app: Path,
    requirements: Path | None,
    targets: Sequence[TargetSpec],
    work: Path,
    project: Path,
    progress: Progress,
) -> Wheelhouse:
    """Per target: download, pin, prove complete; then one shared wheelhouse with every wheel.

    `project` is pip's working directory, so relative paths in requirements.txt still work.
    """
    house = work / "wheelhouse"
    house.mkdir()
    locks = []
    stored: dict[str, str] = {}  # file name -> sha256 of the wheel in the house, hashed once
    # One pip per target, side by side: each mostly waits on the index (about 1 s each warm).
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(targets))) as pool:
        downloads = []
        for target in targets:
            progress(f"downloading wheels for {target.tag} ...")
            dest = work / "download" / target.tag
            downloads.append(pool.submit(download_target, target, app, requirements, dest, project))
        results = [future.result() for future in downloads]  # the first target's error wins
    for target, wheels in zip(targets, results):
        pins = tuple(sorted(pin_of(wheel) for wheel in wheels))
        downloaded = wheels[0].parent
        check_closure(target, pins, downloaded)
        for pin in pins:
            if pin.filename not in stored:
                shutil.copyfile(downloaded / pin.filename, house / pin.filename)
                stored[pin.filename] = pin.sha256
            elif stored[pin.filename] != pin.sha256:  # the same file name must mean the same bytes
                raise BundleError(
                    f"{pin.filename}: two different files under one name; clear pip's cache and retry"
                )
        locks.append(TargetLock(target, pins))
    return Wheelhouse(house, app.name, tuple(locks))
