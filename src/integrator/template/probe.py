"""`init` asks the app for its health path, when it can run it: with the project's own venv.

The request is the bundle preflight's (bundle/preflight.py: its driver, in a subprocess with a
timeout and, where possible, no network; Host the service's name, `X-Forwarded-Proto: https`),
run with the interpreter of a virtual environment inside the project (a directory holding
`pyvenv.cfg`) and the project's own modules. The first of /healthz, /health, / that answers 2xx
is the health path. Without such a venv, or when the app does not import in it, init keeps what
it read from the source and says why.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..bundle.preflight import CANDIDATE_PATHS, PreflightRefused, isolation, run_driver
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


def probe_health(project: Project, spec: ServiceSpec) -> Probe | None:
    """Ask the app for /healthz, /health and / ([http] health_path must be /healthz); None: cannot run it."""
    python = project_python(project.root)
    if python is None:
        return None
    shown = python.relative_to(project.root)
    with tempfile.TemporaryDirectory(prefix="integrator-init-") as tmp:
        try:
            outcome = run_driver(spec, Path(tmp), isolation(), python=python, source=project.import_root)
        except PreflightRefused as exc:
            return Probe(None, f"init could not ask the app with {shown}: {exc.message}")
    if "error" in outcome:
        return Probe(None, f"importing {spec.entry} with {shown} failed: {outcome['error']}")
    answers = [(str(p), int(s)) for p, s, _ in outcome["answers"]]  # type: ignore[attr-defined]
    said = ", ".join(f"{p} -> {s}" for p, s in answers)
    for path, status in answers:
        if path in CANDIDATE_PATHS and 200 <= status < 300:
            return Probe(path, f"asked the app with {shown}: {said}")
    return Probe(None, f"asked the app with {shown}: {said}; none answers 2xx")
