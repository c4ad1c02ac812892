"""Procfile `web:` lines (Heroku, Dokku, foreman): which WSGI app gunicorn, waitress-serve or uwsgi runs."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from ..spec import ENTRY_RE
from .shapes import PROCFILE, Candidate, Found, Resolver

_APP_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(.*\))?")
_TAKES_VALUE = {"-b", "--bind", "-k", "--worker-class", "-c", "--config", "--listen", "--host", "--port"}
_UWSGI_MODULE = {"--module", "-w", "--wsgi", "--wsgi-module"}
ASGI_SERVERS = {"uvicorn", "hypercorn", "daphne", "granian"}


def procfile_entry(command: str) -> tuple[str | None, str]:
    """(entry, "") for a `web:` command gunicorn, waitress-serve or uwsgi runs; (None, why) else."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None, "not parsed as a shell command"
    while argv and (("=" in argv[0] and not argv[0].startswith("-")) or argv[0] == "exec"):
        argv = argv[1:]  # FOO=bar and exec prefixes
    if len(argv) > 2 and argv[0].rsplit("/", 1)[-1].startswith("python") and argv[1] == "-m":
        argv = argv[2:]
    program = argv[0].rsplit("/", 1)[-1] if argv else ""
    if program in ASGI_SERVERS:
        return None, f"{program} serves ASGI; integrator runs WSGI apps under gunicorn"
    if program == "uwsgi":
        return _uwsgi_entry(argv[1:])
    if program not in {"gunicorn", "waitress-serve"}:
        return None, f"{program or 'an empty command'} is not gunicorn, waitress-serve or uwsgi"
    factory = program == "waitress-serve" and "--call" in argv
    for before, arg in zip(argv, argv[1:]):
        if before not in _TAKES_VALUE and _APP_SPEC.fullmatch(arg):
            return (f"{arg}()" if factory else arg), ""
    return None, f"no MODULE:APP argument for {program}"


def _uwsgi_entry(args: list[str]) -> tuple[str | None, str]:
    options: dict[str, str] = {}
    for option, value in zip(args, args[1:]):
        options.setdefault(option, value)
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            options.setdefault(*arg.split("=", 1))
    callable_ = options.get("--callable", "application")
    module = next((options[o] for o in _UWSGI_MODULE if o in options), None)
    if module is None and "--wsgi-file" in options:
        module = options["--wsgi-file"].removesuffix(".py").replace("/", ".")
    if module is None:
        return None, "no --module, -w or --wsgi-file for uwsgi"
    return (module if ":" in module else f"{module}:{callable_}"), ""


def procfile_candidates(text: str, modules: set[str], resolver: Resolver, found: Found) -> list[str]:
    """Candidates from `web:` lines; notes for lines that name no app integrator can run."""
    notes = []
    for number, line in enumerate(text.splitlines(), start=1):
        kind, _, command = line.partition(":")
        if kind.strip() != "web":
            continue
        entry, why = procfile_entry(command.strip())
        where = PurePosixPath(f"{PROCFILE}:{number}")
        if entry is None:
            notes.append(f"{where}: web: {why}")
        elif not ENTRY_RE.fullmatch(entry):
            found.needs_arguments.append(f"{where}: {entry} passes arguments")
        elif entry.split(":")[0] not in modules:
            notes.append(f"{where}: module {entry.split(':')[0]!r} of {entry} is not in the project")
        else:
            module, _, attr = entry.partition(":")
            origin = resolver.origin(module, attr.removesuffix("()")) + ("()" if attr.endswith("()") else "")
            found.candidates.append(Candidate(entry, "procfile", where, origin))
    return notes
