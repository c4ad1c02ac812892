"""The app's wheel, every dependency's wheel for each target, and one hash lock per target.

Resolution is pip's own (`pip download --only-binary=:all:` with a target Python, ABI and
platform list), run once per target on the build machine; the lock it yields is installed
with `--no-deps --require-hashes` on the host, so no resolver ever runs there.

pip evaluates environment markers (`python_version < "3.10"`) against the interpreter it
runs on, not the `--python-version` it is given (pypa/pip#11010): bundling for 3.9 from 3.11
would silently drop `importlib-metadata`, which Flask needs on 3.9. So pip runs with its
marker environment set to the target's, and `check_closure` proves every lock complete.
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import BundleError, EnvironmentProblem, UsageError
from ..spec import ServiceSpec

Progress = Callable[[str], None]

MACHINES = ("x86_64", "aarch64")
# Newest glibc a wheel may need: RHEL 8 has 2.28, RHEL 9 2.34, Debian 12 2.36.
MAX_GLIBC = (2, 28)
_OLDEST_MANYLINUX = {"x86_64": 5, "aarch64": 17}
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PYTHON_RE = re.compile(r"^3\.([0-9]{1,2})$")
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


@dataclass(frozen=True)
class TargetSpec:
    """A CPython minor version on a machine, on any glibc >= the oldest the wheels need."""

    python: str  # "3.9"
    machine: str  # "x86_64"

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def tag(self) -> str:
        return f"{self.abi}-{self.machine}"

    @property
    def newest_platform(self) -> str:
        return f"manylinux_{MAX_GLIBC[0]}_{MAX_GLIBC[1]}_{self.machine}"

    def platforms(self) -> list[str]:
        """Every manylinux tag a glibc <= MAX_GLIBC system accepts, newest (preferred) first."""
        minors = range(MAX_GLIBC[1], _OLDEST_MANYLINUX[self.machine] - 1, -1)
        tags = [f"manylinux_2_{minor}_{self.machine}" for minor in minors]
        legacy = [name for name, (_, minor) in _LEGACY_MANYLINUX.items() if minor in minors]
        return tags + [f"{name}_{self.machine}" for name in sorted(legacy, reverse=True)]

    def marker_env(self) -> dict[str, str]:
        """PEP 508 marker values of a CPython of this version on Linux on this machine."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
        }


def parse_targets(pythons: Sequence[str], machines: Sequence[str]) -> list[TargetSpec]:
    """`--python 3.9,3.11 --platform x86_64` -> targets; anything unsupported is a usage error."""
    if not pythons or not machines:
        raise UsageError("give at least one --python and one --platform")
    for python in pythons:
        match = _PYTHON_RE.match(python)
        if not match or int(match.group(1)) < 9:
            raise UsageError(f"--python {python!r}: use 3.9 or newer, as MAJOR.MINOR (e.g. 3.11)")
    for machine in machines:
        if machine not in MACHINES:
            raise UsageError(f"--platform {machine!r}: use one of {', '.join(MACHINES)}")
    unique = {TargetSpec(p, m) for p in pythons for m in machines}
    return sorted(unique, key=lambda t: (machines.index(t.machine), int(t.python.split(".")[1])))


# --- the app's own wheel ------------------------------------------------------------------

_SKIP_ANYWHERE = {"__pycache__", ".git", ".hg", ".svn", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox"}
_SKIP_TOP = {".venv", "venv", "env", "build", "dist", ".eggs", "node_modules", ".nox"}
_NOT_APP_MODULES = {"setup", "conftest", "noxfile", "fabfile"}
_NOT_APP_PACKAGES = {"tests", "test", "docs"}
_DATA_DIRS = ("templates", "static")  # Flask looks for these beside the app module


def _copy_ignore(root: Path, exclude: Path | None) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in _SKIP_ANYWHERE or n.endswith((".pyc", ".pyo", ".egg-info"))}
        if Path(directory) == root:
            skip |= {n for n in names if n in _SKIP_TOP}
        if exclude is not None:
            skip |= {n for n in names if (Path(directory) / n).resolve() == exclude}
        return skip

    return ignore


def is_packaged(project: Path) -> bool:
    return (project / "pyproject.toml").is_file() or (project / "setup.py").is_file()


def flat_pyproject(project: Path, spec: ServiceSpec) -> str:
    """A minimal pyproject for a flat project (app.py + requirements.txt, adopted with `init`).

    Its top-level modules and packages, and Flask's templates/ and static/ beside them, are
    installed as they are, so `entry = "app:app"` imports the same names it did before.
    The dependencies stay in requirements.txt, which the download step reads.
    """
    modules = sorted(
        p.stem
        for p in project.glob("*.py")
        if p.stem.isidentifier() and p.stem not in _NOT_APP_MODULES and not p.stem.startswith("test")
    )
    packages = sorted(
        p.name
        for p in project.iterdir()
        if p.is_dir()
        and (p / "__init__.py").is_file()
        and p.name.isidentifier()
        and p.name not in _NOT_APP_PACKAGES
    )
    data = [name for name in _DATA_DIRS if (project / name).is_dir() and name not in packages]
    if not modules and not packages:
        raise BundleError(f"{project}: no pyproject.toml, setup.py or top-level Python module to package")
    include = [pattern for name in packages + data for pattern in (name, f"{name}.*")]
    lines = [
        "# Generated by integrator for a project without pyproject.toml.",
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {json.dumps(spec.name)}",
        f"version = {json.dumps(spec.version)}",
        'requires-python = ">=3.9"',
        "",
        "[tool.setuptools]",
        f"py-modules = {json.dumps(modules)}",
        "include-package-data = false",
    ]
    if include:
        lines += ["", "[tool.setuptools.packages.find]", 'where = ["."]', f"include = {json.dumps(include)}"]
        lines += ["namespaces = true", "", "[tool.setuptools.package-data]", '"*" = ["*"]']
    else:
        lines.append("packages = []")
    return "\n".join(lines) + "\n"


def flat_requirements(project: Path) -> Path | None:
    """A flat project's dependencies live in requirements.txt; a packaged one's in its metadata."""
    path = project / "requirements.txt"
    return path if not is_packaged(project) and path.is_file() else None


_INDEX_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
}
_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}


def sanitize_requirements(path: Path, out: Path) -> list[str]:
    """Copy requirements.txt to `out` without index options; return a note for each dropped.

    Where wheels come from is the build machine's pip configuration (a mirror, a proxy), not
    a line in an app's file (`integrator init` says the same). Nested -r/-c files are made
    absolute so the copy still finds them.
    """
    kept, notes = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        option = re.split(r"[\s=]", line, maxsplit=1)[0] if line.startswith("-") else ""
        if option in _INDEX_OPTIONS:
            notes.append(
                f"{path.name}:{number}: {option} ignored: pip's configuration decides where wheels come from"
            )
            continue
        if option in _INCLUDE_OPTIONS:
            line = f"{option} {(path.parent / line[len(option) :].strip(' =')).resolve()}"
        kept.append(line)
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return notes


def _pip(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BundleError(f"pip did not finish within {_TIMEOUT} s: {' '.join(args[:4])} ...") from None


def _check_pip() -> None:
    if importlib.util.find_spec("pip") is None:
        raise EnvironmentProblem(f"{sys.executable} has no pip: install pip into integrator's environment")


def build_app_wheel(project: Path, spec: ServiceSpec, work: Path, epoch: int, exclude: Path | None) -> Path:
    """`pip wheel --no-deps` of a clean copy, so the build leaves nothing in the user's tree."""
    _check_pip()
    copy = work / "source"
    shutil.copytree(project, copy, ignore=_copy_ignore(project.resolve(), exclude))
    if not is_packaged(copy):
        (copy / "pyproject.toml").write_text(flat_pyproject(copy, spec), encoding="utf-8")
    out = work / "app"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "--no-input"]
    proc = _pip([*argv, "--wheel-dir", str(out), str(copy)], cwd=work, env=env)
    if proc.returncode != 0:
        raise BundleError(f"building the wheel of {project} failed: {_pip_error(proc.stdout + proc.stderr)}")
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"building the wheel of {project} gave {len(wheels)} wheels, expected one")
    return wheels[0]


# --- dependency wheels per target ---------------------------------------------------------


def download_command(target: TargetSpec, app_wheel: Path, requirements: Path | None, dest: Path) -> list[str]:
    args = ["download", "--only-binary=:all:", "--python-version", target.python, "--implementation", "cp"]
    args += ["--abi", target.abi]
    for platform in target.platforms():
        args += ["--platform", platform]
    args += ["--dest", str(dest), "--progress-bar", "off", "--no-input", "--disable-pip-version-check"]
    args += [str(app_wheel), *ALWAYS]
    if requirements is not None:
        args += ["-r", str(requirements)]
    return [sys.executable, "-c", _PIP_FOR_TARGET, json.dumps(target.marker_env(), sort_keys=True), *args]


def download_target(
    target: TargetSpec, app_wheel: Path, requirements: Path | None, dest: Path, cwd: Path
) -> list[Path]:
    """pip's resolution of app + gunicorn (+ requirements.txt) for `target`, as wheel files."""
    dest.mkdir(parents=True)
    proc = _pip(download_command(target, app_wheel, requirements, dest), cwd=cwd)
    if proc.returncode != 0:
        raise BundleError(download_error(proc.stdout + proc.stderr, target))
    if not (dest / app_wheel.name).exists():  # pip copies local files it resolved; be sure
        shutil.copyfile(app_wheel, dest / app_wheel.name)
    others = [p.name for p in dest.iterdir() if not p.name.endswith(".whl")]
    if others:
        raise BundleError(f"{target.tag}: pip downloaded non-wheel files: {', '.join(sorted(others))}")
    return sorted(dest.glob("*.whl"))


def download_error(output: str, target: TargetSpec) -> str:
    """pip's many lines -> one that names the package and the target."""
    match = re.search(r"No matching distribution found for (\S+)", output) or re.search(
        r"satisfies the requirement (\S+)", output
    )
    if match:
        return (
            f"no usable wheel of {match.group(1)} for {target.tag} (CPython {target.python}, "
            f"{target.machine}, glibc <= {MAX_GLIBC[0]}.{MAX_GLIBC[1]}, or pure Python): "
            "pin a version that has one, or drop that target"
        )
    return f"{target.tag}: pip download failed: {_pip_error(output)}"


def _pip_error(output: str) -> str:
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return errors[0] if errors else (lines[-1] if lines else "(no output)")


# --- locks ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Pin:
    name: str  # canonical: lower case, runs of -_. as one -
    version: str
    filename: str
    sha256: str

    @property
    def line(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pin_of(wheel: Path) -> Pin:
    parts = wheel.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise BundleError(f"{wheel.name}: not a wheel file name")
    return Pin(canonical_name(parts[0]), parts[1], wheel.name, sha256_file(wheel))


def wheel_glibc(filename: str) -> tuple[int, int] | None:
    """Oldest glibc a wheel runs on, from its platform tags; None for a pure-Python wheel."""
    versions = []
    for tag in filename[: -len(".whl")].split("-")[-1].split("."):
        match = re.match(r"^manylinux_(\d+)_(\d+)_", tag)
        if match:
            versions.append((int(match.group(1)), int(match.group(2))))
        elif tag.split("_")[0] in _LEGACY_MANYLINUX:
            versions.append(_LEGACY_MANYLINUX[tag.split("_")[0]])
    return min(versions) if versions else None


def needed_glibc(pins: Sequence[Pin]) -> str | None:
    needs = [v for v in (wheel_glibc(p.filename) for p in pins) if v is not None]
    return ".".join(map(str, max(needs))) if needs else None


def lock_text(target: TargetSpec, pins: Sequence[Pin]) -> str:
    header = [
        f"# integrator lock for CPython {target.python} on {target.machine} (wheels in ../wheelhouse)",
        "# pip install --no-index --find-links WHEELHOUSE --require-hashes --no-deps -r THIS_FILE",
    ]
    return "\n".join(header + [pin.line for pin in sorted(pins)]) + "\n"


def _vendored(module: str) -> Any:
    """pip's own copy of `packaging`: pip is already required, `packaging` itself is not."""
    return importlib.import_module(f"pip._vendor.packaging.{module}")


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise BundleError(f"{wheel.name}: no unique .dist-info/METADATA")
        metadata = email.parser.Parser().parsestr(zf.read(names[0]).decode("utf-8", errors="replace"))
    return metadata.get_all("Requires-Dist") or []


def check_closure(target: TargetSpec, pins: Sequence[Pin], wheel_dir: Path) -> None:
    """Every dependency each locked wheel declares for `target` is locked at a fitting version.

    `--no-deps` on the host trusts the lock to be complete; this proves it, independently
    of how pip resolved (extras are not followed: they are never needed for a missing one).
    """
    requirement_cls = _vendored("requirements").Requirement
    pinned = {pin.name: pin.version for pin in pins}
    environment = {**target.marker_env(), "extra": ""}
    for pin in pins:
        for line in _requires_dist(wheel_dir / pin.filename):
            req = requirement_cls(line)
            if req.marker is not None and not req.marker.evaluate(environment):
                continue
            have = pinned.get(canonical_name(req.name))
            if have is None or not req.specifier.contains(have, prereleases=True):
                found = "lacks it" if have is None else f"has {have}"
                raise BundleError(f"{target.tag}: {pin.filename} needs {line.strip()}, the lock {found}")


# --- the whole wheelhouse -------------------------------------------------------------------


@dataclass(frozen=True)
class TargetLock:
    target: TargetSpec
    pins: tuple[Pin, ...]

    @property
    def glibc(self) -> str | None:
        return needed_glibc(self.pins)

    @property
    def text(self) -> str:
        return lock_text(self.target, self.pins)


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path  # one shared directory: a wheel several targets use is stored once
    app_wheel: str
    locks: tuple[TargetLock, ...]

    def wheels(self) -> list[Path]:
        return sorted(self.directory.glob("*.whl"))


def _add_to_house(wheel: Path, house: Path, digest: str) -> None:
    target = house / wheel.name
    if target.exists():
        if sha256_file(target) != digest:  # the same file name must mean the same bytes
            raise BundleError(
                f"{wheel.name}: two different files under one name; clear pip's cache and retry"
            )
        return
    shutil.copyfile(wheel, target)


def collect_wheels(
    project: Path,
    spec: ServiceSpec,
    targets: Sequence[TargetSpec],
    work: Path,
    epoch: int,
    progress: Progress,
    exclude: Path | None = None,
) -> Wheelhouse:
    """App wheel, then per target: download, pin, prove complete, add to the shared wheelhouse."""
    progress(f"building the wheel of {spec.name} {spec.version} ...")
    app = build_app_wheel(project, spec, work, epoch, exclude)
    requirements = flat_requirements(project)
    if requirements is not None:
        clean = work / "requirements.txt"
        for note in sanitize_requirements(requirements, clean):
            progress(note)
        requirements = clean
    house = work / "wheelhouse"
    house.mkdir()
    locks = []
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
        check_closure(target, pins, wheels[0].parent)
        digests = {pin.filename: pin.sha256 for pin in pins}
        for wheel in wheels:
            _add_to_house(wheel, house, digests[wheel.name])
        locks.append(TargetLock(target, pins))
    return Wheelhouse(house, app.name, tuple(locks))
