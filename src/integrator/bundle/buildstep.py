"""[package] build (BUILD SIDE): the project's own build command, run by `bundle` before it packages.

A Django project's static files exist only once `manage.py collectstatic` has filled STATIC_ROOT;
asking the user to run it before each bundle is a step they forget. The command runs in the
project directory, with the project's dependencies installed: the wheelhouse of a first
collection in a throwaway venv (`preflight.throwaway_venv`, the host's own installer), its bin
first on PATH, and the user's environment plus the spec's [env] (so DJANGO_SETTINGS_MODULE
applies). Then `bundle` reads the project again and collects [static] and the app wheel from
it, so whatever the command wrote is packaged. It never reaches a host's configuration (the
spec.json in the bundle carries it, validated like every field).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from ..errors import BundleError
from ..spec import ServiceSpec

TIMEOUT_S = 1800
TAIL_LINES = 10  # of the command's output, shown when it fails


def build_environment(spec: ServiceSpec, venv: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The user's environment, the venv's bin first on PATH, then [env] (the app's settings)."""
    env = {k: v for k, v in base.items() if k != "PYTHONHOME"}
    env["PATH"] = f"{venv / 'bin'}:{base.get('PATH') or '/usr/bin:/bin'}"
    env["VIRTUAL_ENV"] = str(venv)
    env.update(spec.env.vars)
    return env


def run_build(
    spec: ServiceSpec, project: Path, venv: Path, env: Mapping[str, str], progress: Callable[[str], None]
) -> str:
    """Run [package] build in `project`; a line saying it ran, or BundleError with its last output."""
    argv = list(spec.package.build)
    shown = shlex.join(argv)
    where = f"[package] build `{shown}`"
    progress(f"build: running {shown} in {project} ...")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            cwd=project,
            env=build_environment(spec, venv, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise BundleError(
            f"{where}: {argv[0]} is neither in the project's dependencies nor on PATH; "
            "add the package that provides it to the project's requirements"
        ) from None
    except subprocess.TimeoutExpired:
        raise BundleError(f"{where} ran over {TIMEOUT_S} s and was stopped") from None
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-TAIL_LINES:]
        for line in tail:
            progress(f"build: {line}")
        last = tail[-1].strip() if tail else "(no output)"
        raise BundleError(f"{where} failed (exit {proc.returncode}): {last}; fix it, then bundle again")
    return f"{shown} ran ({time.monotonic() - started:.1f} s)"
