"""The service spec: one `service.toml` per service, validated strictly in one place.

Every renderer (systemd, nginx, gunicorn, SELinux) reads this object and nothing else, so
the generated files cannot disagree about names, paths or limits. Loading TOML is build-side
only; on a host the same spec travels as JSON (`to_dict` / `from_dict`, stdlib only), and
`from_dict` runs the very same checks: a bundle author is not trusted with the host's files.

model.py declares the tables and fields once; declare.py is how; codec.py derives the TOML
and JSON forms; checks.py and text.py hold the value rules (import their patterns from there).
"""

from __future__ import annotations

from .checks import text_fields
from .model import (
    Deploy,
    Env,
    Http,
    Limits,
    Secrets,
    Security,
    Server,
    Service,
    ServiceSpec,
    TlsSpec,
    check_name,
    dump_spec_toml,
    load_spec,
    parse_spec,
    spec_comment,
)
from .text import (
    DISTROS,
    ENTRY_RE,
    NAME_RE,
    SPEC_FILE,
    SYSTEM_ACCOUNTS,
    check_secret_name,
    check_service_name,
    check_text,
)

__all__ = [
    "DISTROS",
    "ENTRY_RE",
    "NAME_RE",
    "SPEC_FILE",
    "SYSTEM_ACCOUNTS",
    "Deploy",
    "Env",
    "Http",
    "Limits",
    "Secrets",
    "Security",
    "Server",
    "Service",
    "ServiceSpec",
    "TlsSpec",
    "check_name",
    "check_secret_name",
    "check_service_name",
    "check_text",
    "dump_spec_toml",
    "load_spec",
    "parse_spec",
    "spec_comment",
    "text_fields",
]
