"""`init` asks the app for its health path: with the project's own venv, else with a throwaway one.

The request is the bundle preflight's (bundle/preflight.py: its driver, in a subprocess with a
timeout and, where possible, no network; Host the service's name, `X-Forwarded-Proto: https`).
It runs with the interpreter of a virtual environment inside the project (a directory holding
`pyvenv.cfg`) and the project's own modules; without one, `init` builds what the preflight
builds (the app wheel, its dependencies for one target whose CPython is on this machine,
installed offline into a throwaway venv) and asks that. The first of /healthz, /health, / that
answers 2xx is the health path. When the app cannot be installed or does not import, init keeps
what it read from the source and says why.
"""

from __future__ import annotations

import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..bundle.appwheel import app_requires_python, build_app_wheel, prepare_requirements
from ..bundle.preflight import CANDIDATE_PATHS, PreflightRefused, find_interpreter, isolation, run_driver
from ..bundle.source import source_epoch
from ..bundle.targets import DEFAULT_PYTHONS, admits, parse_targets
from ..bundle.venv import build_venv, normalize_machine
from ..bundle.wheels import collect_wheels
from ..errors import IntegratorError
from ..project.model import Project
from ..spec import ServiceSpec


@dataclass(frozen=True)
class Probe:
    """What asking the app gave: the first path that answered 2xx (or None), and how it went."""

    path: str | None
    line: str


def project_python(root: Path) -> Path | None:
    """The interpreter of the first virtual environment directly inside the project, if any."""
    for child in sorted(root.iterdir()):
        python = child / "bin" / "python"
        if (child / "pyvenv.cfg").is_file() and python.is_file():
            return python
    return None


def _progress(message: str) -> None:
    sys.stderr.write(f"integrator: init: {message}\n")
    sys.stderr.flush()


def throwaway_python(project: Project, spec: ServiceSpec, work: Path) -> tuple[Path, str]:
    """(python, how) of a venv with the app and its dependencies, as the bundle's preflight builds it.

    The target: the first default Python the project's Requires-Python admits whose CPython is on
    this machine. Raises IntegratorError when there is none, or the build or download fails.
    """
    app = build_app_wheel(project, spec, work, source_epoch(None), exclude=None)
    wanted = app_requires_python(app)
    pythons = [p for p in DEFAULT_PYTHONS if not wanted or admits(wanted, p)]
    found = next(((p, i) for p in pythons if (i := find_interpreter(p)) is not None), None)
    if found is None:
        raise IntegratorError(f"no CPython {', '.join(pythons) or 'that fits'} on this machine")
    python, interpreter = found
    target = parse_targets([python], [normalize_machine(platform.machine())])
    requirements = prepare_requirements(project, work, _progress)
    house = collect_wheels(
        app,
        requirements,
        target,
        work,
        project.root,
        _progress,
        extras=spec.package.extras,
        requires=spec.package.requires,
    )
    lock = house.locks[0]
    lock_file = work / f"{lock.target.tag}.txt"
    lock_file.write_text(lock.text)
    _progress(f"installing {lock.target.tag} into a throwaway venv to ask the app for its health path ...")
    build_venv(work / "venv", house.directory, lock_file, python=interpreter)
    return work / "venv" / "bin" / "python", f"a throwaway {lock.target.tag} venv"


def probe_health(project: Project, spec: ServiceSpec, install: bool = True) -> Probe | None:
    """Ask the app for [http] health_path, /healthz, /health and /: the first that answers 2xx;
    None: not asked.

    `install` False: only a venv inside the project is used (no download).
    """
    own = project_python(project.root)
    if own is None and not install:
        return None
    with tempfile.TemporaryDirectory(prefix="integrator-init-") as tmp:
        home = Path(tmp)
        source = project.import_root if own is not None else None
        try:
            if own is not None:
                python, shown = own, str(own.relative_to(project.root))
            else:
                python, shown = throwaway_python(project, spec, home / "build")
            outcome = run_driver(spec, home, isolation(), python=python, source=source)
        except PreflightRefused as exc:
            return Probe(None, f"init could not ask the app with {shown}: {exc.message}")
        except IntegratorError as exc:
            return Probe(None, f"init could not install the app to ask it: {exc.message}")
    if "error" in outcome:
        return Probe(None, f"importing {spec.entry} with {shown} failed: {outcome['error']}")
    answers = [(str(p), int(s)) for p, s, _ in outcome["answers"]]  # type: ignore[attr-defined]
    said = ", ".join(f"{p} -> {s}" for p, s in answers)
    for path, status in answers:
        if (path in CANDIDATE_PATHS or path == spec.http.health_path) and 200 <= status < 300:
            return Probe(path, f"asked the app with {shown}: {said}")
    return Probe(None, f"asked the app with {shown}: {said}; none answers 2xx")
