"""Reading secrets: from systemd credentials on a host, from the environment on a laptop.

On a host, a secret named in service.toml (`[secrets] files = ["db_password"]`) and supplied
at deploy (`integrator deploy ... --secret db_password=FILE`) is handed to the service by
systemd (`LoadCredential=`): a file `$CREDENTIALS_DIRECTORY/db_password` that only this
service can read. It is never in the unit file, the environment or the bundle.

For local development, set `{{NAME}}_SECRET_DB_PASSWORD` instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "{{NAME}}_SECRET_"
# The same rule as service.toml's [secrets] files: no "/" or "..", so no path escapes.
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


class MissingSecret(RuntimeError):
    """The secret was not handed over: a deploy without `--secret`, or an unset variable."""


def env_name(name: str) -> str:
    """`db_password` -> `{{NAME}}_SECRET_DB_PASSWORD`."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret's value, without a trailing newline (files made with `echo` have one).

    Read it when you need it rather than copying it into app.config, so it does not end
    up in debug pages or config dumps.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid secret name (a-z, 0-9, _ . -)")
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / name
        if path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\r\n")
    var = env_name(name)
    if var in env:
        return env[var]
    where = f"{cred_dir}/{name}" if cred_dir else f"$CREDENTIALS_DIRECTORY/{name} (it is not set)"
    raise MissingSecret(
        f"secret {name!r} not found: looked for {where} and ${var}. On a host, list it in "
        f"service.toml [secrets] files and deploy with --secret {name}=FILE; locally, set ${var}."
    )
