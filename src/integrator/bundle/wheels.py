"""Every dependency's wheel for each target, by pip's own resolution, in one wheelhouse.

Resolution is pip's own, through its documented command line (`pip download
--only-binary=:all:` with a target Python, implementation, ABI and platform list), run per
target on the build machine; the lock it yields is installed as it is on the host, so no
resolver ever runs there.

pip evaluates environment markers (`python_version < "3.10"`) against the interpreter it
runs on, not the `--python-version` it is given (pypa/pip#11010): bundling for 3.9 from 3.11
leaves out `importlib-metadata`, which Flask needs on 3.9. So each download is followed by
a walk of the wheels' Requires-Dist under the *target's* markers (`locks.walk`): what pip
left out is added to its input and pip resolves the whole again, together (a round; at most
`_ROUNDS`), and wheels no root reaches on the target are left out of the lock.
`locks.check_closure` then proves every lock complete.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from packaging.requirements import Requirement

from ..errors import BundleError
from . import resolvecache
from .locks import (
    TargetLock,
    check_closure,
    extra_requirements,
    pin_of,
    requirement_names,
    walk,
    wheel_metadata,
)
from .targets import TargetSpec, admits
from .wheel_errors import Needs, NoWheel, PythonMismatch, download_error

Progress = Callable[[str], None]

_TIMEOUT = 1800
_PARALLEL = 4
ALWAYS = ("gunicorn",)  # every bundle runs under gunicorn

_ROUNDS = 4  # pip runs per target at most: the first, then one per layer of marker-hidden deps


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
    """pip download for `target`: the app wheel, `extra` (gunicorn and what earlier rounds found
    missing) and the requirements file; pip's documented options only."""
    args = [sys.executable, "-m", "pip", "download", "--only-binary=:all:"]
    args += ["--python-version", target.python, "--implementation", "cp"]
    args += ["--abi", target.abi]
    for platform in target.platforms():
        args += ["--platform", platform]
    args += ["--dest", str(dest), "--progress-bar", "off", "--no-input", "--disable-pip-version-check"]
    args += [*([str(app_wheel)] if app_wheel else []), *extra]
    if requirements is not None:
        args += ["-r", str(requirements)]
    return args


def download_target(
    target: TargetSpec,
    app_wheel: Path,
    requirements: Path | None,
    dest: Path,
    cwd: Path,
    extras: Sequence[str] = (),
    requires: Sequence[str] = (),
) -> list[Path]:
    """pip's resolution of app (+ its `extras`' requirements) + gunicorn + `requires` (+
    requirements.txt) for `target`, completed for the target's markers (see the module
    docstring), as wheel files in `dest`."""
    added = [*extra_requirements(target, app_wheel, extras), *(Requirement(r) for r in requires)]
    always = [*ALWAYS, *(str(req) for req in added)]
    key = resolvecache.resolution_key(target, app_wheel, requirements, always, version("pip"))
    cached = resolvecache.lookup(key, dest)
    if cached is not None:  # the same dependencies resolved within the hour: no index asked
        shutil.copyfile(app_wheel, dest / app_wheel.name)
        return sorted(dest.glob("*.whl"))
    roots = {pin_of(app_wheel).name, *ALWAYS, *(req.name for req in added)}
    listed = requirement_names(requirements.read_text().splitlines()) if requirements else set()
    extra: list[str] = list(always)
    for round_ in range(1, _ROUNDS + 1):
        work = dest.parent / f"{dest.name}.round{round_}"
        wheels = _download_round(target, app_wheel, requirements, work, cwd, extra)
        pins = [pin_of(wheel) for wheel in wheels]
        found = walk(target, pins, work, roots | (listed or set()))
        if not found.missing:
            break
        extra += [req for req in found.missing if req not in extra]
    else:
        raise BundleError(
            f"{target.tag}: pip's resolution still lacks {', '.join(found.missing)} for this target "
            f"after {_ROUNDS} rounds; pin it in requirements.txt"
        )
    work.rename(dest)
    keep = {pin.filename for pin in pins if listed is None or pin.name in found.reached}
    for wheel in wheels:
        if wheel.name not in keep:  # pip took it for this interpreter's markers, not the target's
            (dest / wheel.name).unlink()
    resolved = sorted(dest.glob("*.whl"))
    resolvecache.store(key, [wheel for wheel in resolved if wheel.name != app_wheel.name])
    return resolved


def _download_round(
    target: TargetSpec,
    app_wheel: Path,
    requirements: Path | None,
    dest: Path,
    cwd: Path,
    extra: Sequence[str],
) -> list[Path]:
    """One `pip download` into a fresh `dest`: its wheel files."""
    dest.mkdir(parents=True)
    proc = run_pip(download_command(target, app_wheel, requirements, dest, extra=extra), cwd=cwd)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        needs = python_needs(output, target, dest.parent / f"{target.tag}-probe", cwd)
        if needs is not None:
            raise PythonMismatch(download_error(output, target, needs), needs)
        message = download_error(output, target)
        raise NoWheel(message) if message.startswith("no usable wheel") else BundleError(message)
    if not (dest / app_wheel.name).exists():  # pip copies local files it resolved; be sure
        shutil.copyfile(app_wheel, dest / app_wheel.name)
    others = [p.name for p in dest.iterdir() if not p.name.endswith(".whl")]
    if others:
        raise BundleError(f"{target.tag}: pip downloaded non-wheel files: {', '.join(sorted(others))}")
    return sorted(dest.glob("*.whl"))


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


def _result(
    future: Future[list[Path]], target: TargetSpec, optional: bool, progress: Progress
) -> list[Path] | None:
    """The target's wheels; None for an optional target a dependency excludes or has no wheel for
    (the first error wins)."""
    try:
        return future.result()
    except NoWheel as exc:
        if not optional:
            raise
        progress(f"no {target.tag} target: {exc.message.split(' (CPython')[0]}")
        return None
    except PythonMismatch as exc:
        if not optional:
            raise
        name, version, requires = exc.needs
        progress(f"no {target.tag} target: {name} {version} needs Requires-Python {requires}")
        return None


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
    *,
    optional: bool = False,
    extras: Sequence[str] = (),
    requires: Sequence[str] = (),
) -> Wheelhouse:
    """Per target: download, pin, prove complete; then one shared wheelhouse with every wheel.

    `project` is pip's working directory, so relative paths in requirements.txt still work.
    `optional` (default targets, not asked for): a target a dependency's Requires-Python excludes,
    or that a dependency has no wheel for, is left out with a note, as long as one target remains.
    `extras`: optional dependency groups of the app wheel to install too (`[package] extras`);
    `requires`: requirements to install beyond the project's own (`[package] requires`).
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
            downloads.append(
                pool.submit(download_target, target, app, requirements, dest, project, extras, requires)
            )
        results = [_result(future, target, optional, progress) for target, future in zip(targets, downloads)]
    kept = [(target, wheels) for target, wheels in zip(targets, results) if wheels is not None]
    if not kept:  # every target excluded by a dependency: the first one's reason
        downloads[0].result()
    for target, wheels in kept:
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
