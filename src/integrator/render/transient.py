"""A command of the service in a transient unit (`systemd-run`): `integrator run NAME -- CMD`.

Pure: the argv is built from the spec and a release, tested as data. The command runs as the
service's user, with the release's venv, environment and credentials, and under the very
properties of NAME.service: they are read from the blocks render/systemd.py renders into the
unit (`confinement`), so the two cannot drift apart. systemd-run hands the command to systemd
as an argv array (no shell); systemd still expands `$NAME` in it, so every `$` is doubled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import UsageError
from ..layout import Layout
from ..spec import ServiceSpec
from .dropin import NO_HOST_CONFIG, HostConfig
from .systemd import confinement, environment

# A unit-name suffix the host picks (its pid): plain, so the unit name needs no escaping.
_TOKEN = re.compile(r"[a-z0-9]{1,32}")
MAX_ARGS = 4096
STDIO = {"pty": ("--pty",), "pipe": ("--pipe",), "journal": ()}
MAX_ARG_CHARS = 65536


def unit_properties(blocks: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """The KEY=VALUE lines of unit blocks, their comments left out, in order."""
    pairs = []
    for line in (line for block in blocks for line in block):
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def unit_name(layout: Layout, purpose: str, token: str) -> str:
    """NAME-PURPOSE-TOKEN.service: which service it ran for, and what for, in `systemctl` and the journal."""
    if not _TOKEN.fullmatch(token) or not _TOKEN.fullmatch(purpose):
        raise ValueError(f"unit name parts must be [a-z0-9]: {purpose!r}, {token!r}")
    return f"{layout.name}-{purpose}-{token}.service"


def check_command(command: Sequence[str]) -> list[str]:
    """A command line as argv: not empty, bounded, no NUL (an argv element cannot hold one), and
    an absolute program path without `$` (systemd never expands the path, so it must be literal)."""
    if not command:
        raise UsageError("no command given: integrator run NAME -- COMMAND [ARG...]")
    if len(command) > MAX_ARGS or any(len(arg) > MAX_ARG_CHARS for arg in command):
        raise UsageError(f"command too long: at most {MAX_ARGS} arguments of {MAX_ARG_CHARS} characters")
    if any("\0" in arg for arg in command):
        raise UsageError("the command has a NUL character in an argument")
    program = command[0]
    if not program.startswith("/") or "$" in program or any(ord(ch) < 0x20 for ch in program):
        raise UsageError(f"{program!r}: the program must be an absolute path, no '$' or control characters")
    return list(command)


def transient_argv(
    spec: ServiceSpec,
    layout: Layout,
    release_id: str,
    command: Sequence[str],
    *,
    unit: str,
    stdio: str,
    timeout_s: int | None = None,
    host: HostConfig = NO_HOST_CONFIG,
) -> list[str]:
    """systemd-run that runs `command` (argv, program absolute) like NAME.service runs gunicorn:
    same user, venv, environment, credentials and sandboxing; waits, passes the exit code
    through, leaves no unit behind (--collect). `stdio`: "pty" a pseudo-terminal (--pty), "pipe"
    our own stdin, stdout and stderr (--pipe), "journal" its output to the journal only, tagged
    with the unit's name (a release hook). `timeout_s` stops it (RuntimeMaxSec=) after that long.
    `host`: this host's own variables and credentials (render/dropin.py), as the service has them."""
    if stdio not in STDIO:
        raise ValueError(f"stdio must be one of {STDIO}, not {stdio!r}")
    program, *args = check_command(command)
    argv = [
        "systemd-run",
        f"--unit={unit}",
        "--quiet",
        "--wait",
        "--collect",
        *STDIO[stdio],
        "--service-type=exec",
        f"--working-directory={layout.app_dir(release_id)}",
        f"--description={layout.name}: {program}",
    ]
    if timeout_s is not None:
        argv.append(f"--property=RuntimeMaxSec={int(timeout_s)}")
    argv += [f"--setenv={key}={value}" for key, value in (*environment(spec, layout, release_id), *host.env)]
    confined = unit_properties(confinement(spec, layout, release_id))
    added = [s for s in host.secrets if s not in spec.secrets.files]
    confined += [("LoadCredential", f"{name}:{layout.credentials_dir / name}") for name in added]
    argv += [f"--property={key}={value}" for key, value in confined]
    return [*argv, "--", program, *(arg.replace("$", "$$") for arg in args)]
