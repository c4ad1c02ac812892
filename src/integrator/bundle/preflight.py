"""Preflight (BUILD SIDE): does the app import and answer its health path, before the bundle is written?

Every failure found here would otherwise be found on the host, as a failed first deploy and a
rollback. The wheelhouse just collected is installed offline into a throwaway venv (the host's
own code, `venv.build_venv`) with an interpreter of one target, and the entry is imported in a
subprocess, with a timeout and, where possible, no network (`unshare -n`). That subprocess calls
the WSGI app in-process as gunicorn behind nginx presents a request (`DRIVER`). An app that needs
its secrets or a database to answer is built with `--no-preflight`: the host's health check stays
the final gate either way.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..errors import EXIT_USAGE, BundleError, HostError
from ..spec import ServiceSpec, check_name
from .locks import TargetLock
from .venv import build_venv, normalize_machine
from .wheels import Wheelhouse

TIMEOUT_S = 60
CANDIDATE_PATHS = ("/healthz", "/health", "/")  # what a refusal may suggest, in this order
Finder = Callable[[str], Optional[str]]

# Runs with the venv's Python (3.9+), stdlib only. argv: entry, host name, https port, paths...
# Prints one JSON object: {"error": last line of the exception} or {"answers": [[path, status, detail]]}.
DRIVER = r"""
import ast, importlib, io, json, sys, traceback

def last_line(exc):
    return traceback.format_exception_only(type(exc), exc)[-1].strip()

def environ(path, host, port):
    return {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": host, "SERVER_PORT": port, "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "0", "RAW_URI": path,
        "HTTP_HOST": host if port == "443" else host + ":" + port,
        "HTTP_X_FORWARDED_HOST": host if port == "443" else host + ":" + port,
        "HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "127.0.0.1",
        "HTTP_X_FORWARDED_PORT": port, "HTTP_X_REAL_IP": "127.0.0.1",
        "HTTP_USER_AGENT": "integrator-preflight",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }

def call(app, path, host, port):
    status = []
    def start_response(line, headers, exc_info=None):
        status[:] = [line]
    try:
        body = app(environ(path, host, port), start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close:
                close()
    except Exception as exc:
        return [path, 500, "raised " + last_line(exc)]
    line = status[0] if status else "0 no start_response"
    return [path, int(line.split(" ", 1)[0]), line]

def main(entry, host, port, paths):
    module, _, name = entry.partition(":")
    try:
        made = ast.parse(name, mode="eval").body  # as gunicorn reads it: literal keywords only
        app = getattr(importlib.import_module(module), name.split("(")[0])
        if isinstance(made, ast.Call):
            app = app(**{k.arg: ast.literal_eval(k.value) for k in made.keywords})
    except BaseException as exc:
        return {"error": last_line(exc)}
    return {"answers": [call(app, path, host, port) for path in paths]}

sys.stdout.write("\n" + json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])) + "\n")
"""


class PreflightRefused(BundleError):
    """The app would fail its first deploy: bad input, like a bad service.toml."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Verdict:
    """What the preflight did, for the bundle's output."""

    line: str  # one line for a person
    data: dict[str, object]  # the same for --json


def find_interpreter(python: str) -> str | None:
    """A CPython `python` (3.11) on this machine: the system's, then pyenv's, then PATH's."""
    candidates = [f"/usr/bin/python{python}", f"/usr/local/bin/python{python}"]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}.*/bin/python{python}")))
    found = shutil.which(f"python{python}")
    candidates += [found] if found else []
    for path in candidates:
        if os.access(path, os.X_OK) and _minor_of(path) == python:
            return path
    return None


def _minor_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def choose_target(
    locks: Sequence[TargetLock], find: Finder = find_interpreter, machine: str = platform.machine()
) -> tuple[TargetLock | None, str | None, list[str]]:
    """The first target whose interpreter is here, and a note for each one passed over."""
    notes: list[str] = []
    here = normalize_machine(machine)
    for lock in locks:
        target = lock.target
        python = find(target.python) if target.machine == here else None
        if python is not None:
            return lock, python, notes
        notes.append(f"no CPython {target.python} on {here} here for {target.tag}")
    return None, None, notes


def isolation() -> list[str]:
    """`unshare -n` (a new, empty network namespace) when this machine allows it, else nothing."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return []
    try:
        ok = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return [unshare, "-n"] if ok else []


def probe_paths(health_path: str) -> list[str]:
    return [health_path, *(p for p in CANDIDATE_PATHS if p != health_path)]


def app_env(spec: ServiceSpec, home: Path, python: Path) -> dict[str, str]:
    """Roughly what the unit gives the app: its [env], an empty state and credentials directory."""
    for sub in ("state", "credentials"):
        (home / sub).mkdir(exist_ok=True)
    return {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "HOME": str(home / "state"),  # as on the host (render/systemd.py environment)
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "STATE_DIRECTORY": str(home / "state"),
        "CREDENTIALS_DIRECTORY": str(home / "credentials"),
        **dict(spec.env.vars),
    }


def run_driver(
    spec: ServiceSpec,
    home: Path,
    prefix: Sequence[str],
    python: Path | None = None,
    source: Path | None = None,
) -> dict[str, object]:
    """The driver in the venv (`python`, default the throwaway one), in `home`, not the project, so
    only installed code is found; `source`: the project's own modules instead (`init`'s probe)."""
    python = python or home / "venv" / "bin" / "python"
    env = app_env(spec, home, python)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    argv = [
        *prefix,
        str(python),
        "-c",
        DRIVER,
        spec.entry,
        check_name(spec),
        str(spec.http.https_port),
        *probe_paths(spec.http.health_path),
    ]
    try:
        proc = subprocess.run(
            argv,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PreflightRefused(
            f"preflight: importing {spec.entry} and asking for {spec.http.health_path} "
            f"took over {TIMEOUT_S} s; "
            "if it waits for a database or a secret, build with --no-preflight"
        ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PreflightRefused(
            f"preflight: {spec.entry} stopped the process (exit {proc.returncode}): {tail}"
        ) from None


def judge(spec: ServiceSpec, outcome: dict[str, object]) -> str:
    """`GET /healthz -> 200`, or the one-line refusal."""
    if "error" in outcome:
        raise PreflightRefused(
            f"preflight: importing {spec.entry} failed: {outcome['error']} (build with --no-preflight "
            "if it needs a secret or a database only the host has)"
        )
    answers = [(str(p), int(s), str(d)) for p, s, d in outcome["answers"]]  # type: ignore[attr-defined]
    path, status, detail = answers[0]
    if 200 <= status < 300:
        return f"GET {path} -> {status}"
    working = next((p for p, s, _ in answers[1:] if 200 <= s < 300), None)
    advice = (
        f'{working} answers 2xx: set [http] health_path = "{working}" in service.toml'
        if working
        else f"none of {', '.join(CANDIDATE_PATHS)} answers 2xx either: add a health route"
    )
    shown = detail if detail.startswith("raised") else f"status {status}"
    raise PreflightRefused(
        f"preflight: GET {path} (Host: {check_name(spec)}, X-Forwarded-Proto: https) answered {shown}, "
        f"the first deploy would fail; {advice}, or build with --no-preflight"
    )


def throwaway_venv(
    house: Wheelhouse, home: Path, label: str, progress: Callable[[str], None]
) -> tuple[TargetLock | None, list[str]]:
    """The wheelhouse installed into HOME/venv (the host's own code) with the interpreter of the
    first target this machine has, and a note for each one passed over; None when it has none."""
    lock, python, notes = choose_target(house.locks)
    for note in notes:
        progress(f"{label}: {note}")
    if lock is None or python is None:
        return None, notes
    home.mkdir()
    lock_file = home / f"{lock.target.tag}.txt"
    lock_file.write_text(lock.text)
    progress(f"{label}: installing {lock.target.tag} into a throwaway venv ({python}) ...")
    try:
        build_venv(home / "venv", house.directory, lock_file, python=python)
    except HostError as exc:
        raise BundleError(f"{label}: {exc}") from None
    return lock, notes


def preflight(spec: ServiceSpec, house: Wheelhouse, work: Path, progress: Callable[[str], None]) -> Verdict:
    """Install, import, ask: a Verdict when the app answers 2xx, PreflightRefused when not."""
    home = work / "preflight"
    lock, notes = throwaway_venv(house, home, "preflight", progress)
    if lock is None:
        line = f"skipped: no interpreter here for {', '.join(lk.target.tag for lk in house.locks)}"
        return Verdict(line, {"ran": False, "reason": line})
    prefix = isolation()
    progress(f"preflight: importing {spec.entry} and asking for {spec.http.health_path} ...")
    answer = judge(spec, run_driver(spec, home, prefix))
    network = "no network" if prefix else "network isolation was not possible (unshare -n needs root)"
    line = f"{answer} on {lock.target.tag}, {network}"
    if notes:
        line += f" ({'; '.join(notes)})"
    return Verdict(line, {"ran": True, "target": lock.target.tag, "answer": answer, "isolated": bool(prefix)})
