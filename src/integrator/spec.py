"""The service spec: one `service.toml` per service, validated strictly in one place.

Every renderer (systemd, nginx, gunicorn, SELinux) reads this object and nothing else, so
the generated files cannot disagree about names, paths or limits. Loading TOML is build-side
only; on a host the same spec travels as JSON (`to_dict` / `from_dict`, stdlib only), and
`from_dict` runs the very same checks: a bundle author is not trusted with the host's files.

Text fields, the rule (every value reaches a unit, an nginx site or a path as root):
- No field may hold a control character (C0, DEL, C1 such as U+0085), a line or paragraph
  separator (U+2028/2029), a format character (bidi overrides, zero-width, BOM) or a lone
  surrogate: systemd ends a line at CR as well as LF, Python's tokenizer too, and a value must
  never start a line of its own. Checked first, for every text (`text_fields`).
- Every pattern is matched whole (`re.fullmatch`): `$` would also match before a final "\n".
- Names, version, entry, server names, paths, sizes and secret names are refused unless they
  fit a narrow pattern: no space, quote, backslash, `%`, `$`, `;`, `{` or `}` can reach a
  unit (specifiers, quoting) or the nginx site (token ends, variables), so none is escaped.
- `description` is free text: `%` is written as `%%` in the unit; it may not start or end with
  whitespace (systemd strips it) nor end in a backslash (systemd would join the next line).
- `[env]` values are free text: written quoted and C-escaped, `%` as `%%` (render/systemd.py).
- Lengths are capped, so no value makes a file name or a line too long for the host.
The service name rule is `check_service_name`, the one every host verb applies too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import SpecError

SPEC_FILE = "service.toml"

# Patterns are matched whole (`fullmatch`), never with `match`/`$`.
# A service name is a systemd unit name, a system user name, a directory and a Python
# package all at once: the intersection of those grammars.
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
# Digits and dots, then letters, digits and single separators; no nested repetition, so a
# long near-miss fails at once instead of backtracking exponentially.
VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+)*([._+-]?[A-Za-z0-9])*")
VERSION_MAX = 64
# module.path:attribute  or  module.path:factory()  (a factory called with no arguments)
ENTRY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\(\))?")
ENTRY_MAX = 200
# `_`, a host name, or `*.` and a host name (nginx's only leading wildcard form).
SERVER_NAME_RE = re.compile(r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ENV_VALUE_MAX = 4096
SECRET_NAME_RE = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
SIZE_RE = re.compile(r"[0-9]{1,15}[KMGT]?")
BODY_SIZE_RE = re.compile(r"[0-9]{1,9}[kmg]?")
PERCENT_RE = re.compile(r"[0-9]{1,7}%")
# A file on the host (nginx reads it): no space, quote, `;`, `{`, `}`, `$`, `%` or backslash.
PATH_RE = re.compile(r"/[A-Za-z0-9._+@,=:/-]{0,1023}")
# An HTTP request path (the health check sends it as is): printable ASCII, no quote or space.
URL_PATH_RE = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/?-]{0,1023}")
DESCRIPTION_MAX = 200
# The service runs as a user and group of its own name: these belong to someone else. Users and
# groups of Debian's base-passwd and RHEL 9's setup package, and common services' accounts (`-`
# spelled `_`). An early, clear error for service.toml and spec.json only: the host refuses any
# existing user or group itself (host/ownership.py). Not part of RESERVED_NAMES, so host verbs
# (list, status, uninstall) still reach a service an older integrator deployed under such a name.
_SYSTEM_ACCOUNT_WORDS = (
    "adm audio backup bin cdrom daemon dialout dip disk fax floppy ftp games gnats halt input irc kmem "
    "kvm list lock lp mail man mem news nobody nogroup operator plugdev proxy render sasl sgx shadow "
    "shutdown src staff sudo sync sys tape tty users utempter utmp uucp video voice wheel "
    "apache avahi bind chrony colord dbus dnsmasq docker dovecot elasticsearch git gitlab grafana haproxy "
    "httpd jenkins ldap libvirt mariadb memcache memcached messagebus mongodb mysql named nfsnobody ntp "
    "openldap polkitd postfix postgres prometheus pulse qemu rabbitmq redis rpc rpcuser saslauth squid "
    "sshd sssd statd tcpdump tomcat tss unbound uuidd zabbix"
)
SYSTEM_ACCOUNTS = frozenset(_SYSTEM_ACCOUNT_WORDS.split())
# `default`: nginx packages ship conf.d/default.conf, which the site of a service `default` would be.
RESERVED_NAMES = frozenset(
    {"nginx", "root", "www_data", "systemd", "integrator", "test", "python", "site", "default"}
)
# Environment variables the unit sets itself; a spec may not override them.
RESERVED_ENV = frozenset({"PATH", "PYTHONPATH", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "LISTEN_PID"})

NETWORK_MODES = ("none", "outbound")
TLS_MODES = ("self-signed", "local-ca", "provided")
DISTROS = ("debian", "rhel")


@dataclass(frozen=True)
class TlsSpec:
    """`self-signed`: generated on the host. `local-ca`: issued by the host's own CA (which the
    operator may place there first). `provided`: paths on the host. The first two are renewed by
    a deploy. No CA path comes from the spec: a bundle author must not choose the host's CA."""

    mode: str = "self-signed"
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Limits:
    """systemd resource controls; empty string = no limit."""

    memory_max: str = "512M"
    cpu_quota: str = "200%"
    tasks_max: int = 256


@dataclass(frozen=True)
class ServiceSpec:
    """A validated service.toml. Frozen: renderers cannot change it behind each other's back."""

    name: str
    version: str
    entry: str
    description: str = ""
    workers: int = 2
    threads: int = 4
    timeout: int = 30
    graceful_timeout: int = 30
    server_names: tuple[str, ...] = ()
    default_server: bool = False
    http_port: int = 80
    https_port: int = 443
    health_path: str = "/healthz"
    max_body: str = "10m"
    hsts: bool = True
    tls: TlsSpec = field(default_factory=TlsSpec)
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    network: str = "none"
    memory_deny_write_execute: bool = True
    keep_releases: int = 5

    @property
    def wsgi_module(self) -> str:
        return self.entry.split(":", 1)[0]

    @property
    def wsgi_app(self) -> str:
        """gunicorn's APP_MODULE form: `pkg.mod:create_app()` is accepted by gunicorn >= 20.1."""
        return self.entry

    @property
    def effective_server_names(self) -> tuple[str, ...]:
        return self.server_names or (self.name,)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a bundle carries to the host (where no TOML parser may exist)."""
        data = asdict(self)
        data["env"] = dict(self.env)
        data["server_names"] = list(self.server_names)
        data["secrets"] = list(self.secrets)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "spec.json") -> ServiceSpec:
        """Inverse of `to_dict`; validated again, whole, like service.toml: a bundle may have
        been edited, and its author is trusted less than the host's root."""
        return parse_spec(_dict_to_toml_shape(data, source), source=source)


# --- loading -------------------------------------------------------------------------------


def load_spec(path: Path) -> ServiceSpec:
    """Read and validate `service.toml` (a directory is taken to hold one)."""
    if path.is_dir():
        path = path / SPEC_FILE
    if not path.is_file():
        raise SpecError(f"{path}: no such file (run `integrator new` or `integrator init` first)")
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python < 3.11: build side has tomli
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(data, source=str(path))


# Which keys each table accepts, with their expected types. Unknown keys are errors:
# a typo must never silently fall back to a default.
_SCHEMA: dict[str, dict[str, type]] = {
    "service": {"name": str, "version": str, "entry": str, "description": str},
    "server": {"workers": int, "threads": int, "timeout": int, "graceful_timeout": int},
    "http": {
        "server_names": list,
        "default_server": bool,
        "http_port": int,
        "https_port": int,
        "health_path": str,
        "max_body": str,
        "hsts": bool,
    },
    "tls": {"mode": str, "cert": str, "key": str},
    "env": {},  # free-form: names checked below
    "secrets": {"files": list},
    "limits": {"memory_max": str, "cpu_quota": str, "tasks_max": int},
    "security": {"network": str, "memory_deny_write_execute": bool},
    "deploy": {"keep_releases": int},
}


def parse_spec(data: Mapping[str, Any], *, source: str = SPEC_FILE) -> ServiceSpec:
    """Validate a TOML-shaped mapping; every error names the file and the field."""
    _check_shape(data, source)
    svc = data.get("service", {})
    for required in ("name", "version", "entry"):
        if required not in svc:
            raise SpecError(f"{source}: [service] {required} is required")
    server, http = data.get("server", {}), data.get("http", {})
    tls, limits = data.get("tls", {}), data.get("limits", {})
    security, deploy = data.get("security", {}), data.get("deploy", {})
    spec = ServiceSpec(
        name=svc["name"],
        version=svc["version"],
        entry=svc["entry"],
        description=svc.get("description", ""),
        workers=server.get("workers", 2),
        threads=server.get("threads", 4),
        timeout=server.get("timeout", 30),
        graceful_timeout=server.get("graceful_timeout", 30),
        server_names=tuple(http.get("server_names", ())),
        default_server=http.get("default_server", False),
        http_port=http.get("http_port", 80),
        https_port=http.get("https_port", 443),
        health_path=http.get("health_path", "/healthz"),
        max_body=http.get("max_body", "10m"),
        hsts=http.get("hsts", True),
        tls=TlsSpec(mode=tls.get("mode", "self-signed"), cert=tls.get("cert"), key=tls.get("key")),
        env=tuple(sorted(data.get("env", {}).items())),
        secrets=tuple(data.get("secrets", {}).get("files", ())),
        limits=Limits(
            memory_max=limits.get("memory_max", "512M"),
            cpu_quota=limits.get("cpu_quota", "200%"),
            tasks_max=limits.get("tasks_max", 256),
        ),
        network=security.get("network", "none"),
        memory_deny_write_execute=security.get("memory_deny_write_execute", True),
        keep_releases=deploy.get("keep_releases", 5),
    )
    _check_values(spec, source)
    return spec


_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


def _check_shape(data: Mapping[str, Any], source: str) -> None:
    for table, value in data.items():
        if table not in _SCHEMA:
            raise SpecError(f"{source}: unknown table [{_label(table)}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(value, dict):
            raise SpecError(f"{source}: [{table}] must be a table")
        if table == "env":
            for key, val in value.items():
                if not isinstance(val, str):
                    raise SpecError(f"{source}: [env] {_label(key)} must be a string (quote numbers)")
            continue
        for key, val in value.items():
            expected = _SCHEMA[table].get(key)
            if expected is None:
                known = ", ".join(_SCHEMA[table])
                raise SpecError(f"{source}: unknown key [{table}] {_label(key)} (known: {known})")
            # bool is an int subclass: `workers = true` must not pass as 1
            if not isinstance(val, expected) or (expected is int and isinstance(val, bool)):
                got = _show(val) if isinstance(val, str) else repr(val)[:60]
                raise SpecError(f"{source}: [{table}] {key} must be {_TYPE_NAMES[expected]}, got {got}")
            if isinstance(val, list) and not all(isinstance(item, str) for item in val):
                raise SpecError(f"{source}: [{table}] {key} must be a list of strings")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _label(key: object) -> str:
    """A key as typed (`wokers`), or quoted and escaped when it is anything stranger."""
    text = str(key)
    return text if _BARE_KEY.fullmatch(text) else _show(text)


def _fail_unless(ok: bool, source: str, field_name: str, why: str) -> None:
    if not ok:
        raise SpecError(f"{source}: {field_name} {why}")


def _show(value: str, limit: int = 60) -> str:
    """A value inside a one-line message: quoted, escaped (repr), and cut if long."""
    shown = repr(value if len(value) <= limit else value[:limit])
    return shown if len(value) <= limit else f"{shown}... ({len(value)} characters)"


# Control (C0, DEL, C1), format (bidi, zero-width, BOM), surrogate, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def unsafe_char(text: str) -> str | None:
    """The first character that may not appear in any text of a spec, or None."""
    return next((ch for ch in text if unicodedata.category(ch) in _UNSAFE_CATEGORIES), None)


def check_text(value: str, where: str) -> None:
    """The rule every text obeys first: no character that could end or hide a line.
    `where` names the field in the message: `service.toml: [service] description`."""
    ch = unsafe_char(value)
    if ch is not None:
        raise SpecError(
            f"{where} {_show(value)} contains a control character (U+{ord(ch):04X}): use printable text"
        )


def _fullmatch(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def check_service_name(name: str, where: str = "service name") -> str:
    """The one rule for a service name, in service.toml and for every host verb's NAME: the
    name becomes paths under /opt, /etc, /var/lib and /run, a user, units and an nginx site."""
    check_text(name, where)
    if not _fullmatch(NAME_RE, name):
        raise SpecError(
            f"{where} {_show(name)} is not valid: use a-z, 0-9 and _, starting with a letter, at most "
            "31 characters (it is the unit name, the system user and the Python package)"
        )
    if name in RESERVED_NAMES:
        raise SpecError(f"{where} {name!r} is reserved: choose another name")
    return name


def check_secret_name(name: str, where: str) -> str:
    """A secret becomes a file name under /etc/integrator/NAME/credentials and a credential id."""
    check_text(name, where)
    if not _fullmatch(SECRET_NAME_RE, name):
        raise SpecError(f"{where} {_show(name)} is not a valid name: use a-z, 0-9, _ . -, at most 63")
    return name


def text_fields(s: ServiceSpec) -> list[tuple[str, str]]:
    """Every text of a spec with the field it came from: all of them reach files on a host."""
    fields = [
        ("[service] name", s.name),
        ("[service] version", s.version),
        ("[service] entry", s.entry),
        ("[service] description", s.description),
        ("[http] health_path", s.health_path),
        ("[http] max_body", s.max_body),
        ("[tls] mode", s.tls.mode),
        ("[tls] cert", s.tls.cert or ""),
        ("[tls] key", s.tls.key or ""),
        ("[limits] memory_max", s.limits.memory_max),
        ("[limits] cpu_quota", s.limits.cpu_quota),
        ("[security] network", s.network),
    ]
    fields += [("[http] server_names", name) for name in s.server_names]
    fields += [("[secrets] files", name) for name in s.secrets]
    for key, value in s.env:  # the key is checked before its value: the label may name it
        fields += [("[env]", key), (f"[env] {key}", value)]
    return fields


def _check_values(s: ServiceSpec, src: str) -> None:
    for field_name, text in text_fields(s):
        check_text(text, f"{src}: {field_name}")
    check_service_name(s.name, f"{src}: [service] name")
    _fail_unless(
        s.name not in SYSTEM_ACCOUNTS,
        src,
        "[service] name",
        f"{s.name!r} is a system or service account on Debian or RHEL: choose another name",
    )
    _fail_unless(
        len(s.version) <= VERSION_MAX and _fullmatch(VERSION_RE, s.version),
        src,
        "[service] version",
        f"{_show(s.version)} is not a version (e.g. 1.2.0; at most {VERSION_MAX} characters)",
    )
    _fail_unless(
        len(s.entry) <= ENTRY_MAX and _fullmatch(ENTRY_RE, s.entry),
        src,
        "[service] entry",
        f"{_show(s.entry)} must look like 'package.module:app' or 'package.module:create_app()'",
    )
    _check_description(s.description, src)
    for key, value, low, high in (
        ("[server] workers", s.workers, 1, 64),
        ("[server] threads", s.threads, 1, 256),
        ("[server] timeout", s.timeout, 1, 3600),
        ("[server] graceful_timeout", s.graceful_timeout, 1, 3600),
        ("[http] http_port", s.http_port, 1, 65535),
        ("[http] https_port", s.https_port, 1, 65535),
        ("[limits] tasks_max", s.limits.tasks_max, 16, 1_000_000),
        ("[deploy] keep_releases", s.keep_releases, 2, 100),
    ):
        _fail_unless(low <= value <= high, src, key, f"must be between {low} and {high}, got {value}")
    _fail_unless(s.http_port != s.https_port, src, "[http] https_port", "must differ from http_port")
    for name in s.server_names:
        _fail_unless(
            _fullmatch(SERVER_NAME_RE, name), src, "[http] server_names", f"{_show(name)} is not a host name"
        )
    _fail_unless(
        _fullmatch(URL_PATH_RE, s.health_path),
        src,
        "[http] health_path",
        f"{_show(s.health_path)} must be an absolute URL path (ASCII, no spaces or quotes)",
    )
    _fail_unless(
        _fullmatch(BODY_SIZE_RE, s.max_body), src, "[http] max_body", f"{_show(s.max_body)}: use e.g. '10m'"
    )
    _check_tls(s.tls, src)
    for key, env_value in s.env:
        _fail_unless(_fullmatch(ENV_NAME_RE, key), src, "[env]", f"{_show(key)} is not a valid variable name")
        _fail_unless(key not in RESERVED_ENV, src, "[env]", f"{key} is set by integrator itself")
        _fail_unless(
            len(env_value) <= ENV_VALUE_MAX, src, f"[env] {key}", f"is longer than {ENV_VALUE_MAX} characters"
        )
    for secret in s.secrets:
        check_secret_name(secret, f"{src}: [secrets] files")
    _fail_unless(len(set(s.secrets)) == len(s.secrets), src, "[secrets] files", "has duplicates")
    _fail_unless(
        s.limits.memory_max == "" or _fullmatch(SIZE_RE, s.limits.memory_max),
        src,
        "[limits] memory_max",
        f"{_show(s.limits.memory_max)}: use e.g. '512M'",
    )
    _fail_unless(
        s.limits.cpu_quota == "" or _fullmatch(PERCENT_RE, s.limits.cpu_quota),
        src,
        "[limits] cpu_quota",
        f"{_show(s.limits.cpu_quota)}: use e.g. '200%'",
    )
    _fail_unless(
        s.network in NETWORK_MODES, src, "[security] network", f"must be one of {', '.join(NETWORK_MODES)}"
    )


def _check_description(text: str, src: str) -> None:
    """Free text in Description=: systemd strips the ends and joins a line ending in a backslash."""
    field_name = "[service] description"
    _fail_unless(
        len(text) <= DESCRIPTION_MAX, src, field_name, f"is longer than {DESCRIPTION_MAX} characters"
    )
    _fail_unless(text == text.strip(), src, field_name, f"{_show(text)} starts or ends with whitespace")
    _fail_unless(not text.endswith("\\"), src, field_name, f"{_show(text)} ends with a backslash")


def _check_tls(tls: TlsSpec, src: str) -> None:
    _fail_unless(tls.mode in TLS_MODES, src, "[tls] mode", f"must be one of {', '.join(TLS_MODES)}")
    if tls.mode == "provided":
        for key, value in (("cert", tls.cert), ("key", tls.key)):
            _fail_unless(value is not None, src, f"[tls] {key}", "is required when mode = 'provided'")
            _fail_unless(
                _fullmatch(PATH_RE, value or ""),
                src,
                f"[tls] {key}",
                f"{_show(value or '')} must be an absolute path (letters, digits, . _ + @ , = : / -)",
            )
    else:
        _fail_unless(
            tls.cert is None and tls.key is None, src, "[tls]", "cert/key only go with mode = 'provided'"
        )


def _dict_to_toml_shape(d: Mapping[str, Any], source: str = "spec.json") -> dict[str, Any]:
    """Map the flat `to_dict` form back onto the TOML tables `parse_spec` validates. Every key
    `to_dict` writes must be there and no other: a missing one is named, never a KeyError."""
    if not isinstance(d, Mapping):
        raise SpecError(f"{source}: must be a JSON object")
    _expect_keys(d, ServiceSpec, source, "")
    for key, kind in (("tls", dict), ("limits", dict), ("env", dict), ("secrets", list)):
        if not isinstance(d[key], kind):
            raise SpecError(f"{source}: {key} must be {'an object' if kind is dict else 'a list'}")
    _expect_keys(d["tls"], TlsSpec, source, "tls.")
    _expect_keys(d["limits"], Limits, source, "limits.")
    shape: dict[str, Any] = {}
    for table, keys in _SCHEMA.items():
        if table == "tls":
            shape[table] = {k: v for k, v in d["tls"].items() if v is not None}
        elif table == "secrets":
            shape[table] = {"files": list(d["secrets"])}
        elif table in ("env", "limits"):
            shape[table] = dict(d[table])
        else:
            shape[table] = {k: d[k] for k in keys}
    return shape


def _expect_keys(d: Mapping[str, Any], kind: type, source: str, prefix: str) -> None:
    expected = [f.name for f in fields(kind)]
    missing = [k for k in expected if k not in d]
    if missing:
        raise SpecError(f"{source}: {prefix}{missing[0]} is missing")
    unknown = sorted(str(k) for k in d if k not in expected)
    if unknown:
        raise SpecError(f"{source}: unknown key {prefix}{_show(unknown[0])}")


def dump_spec_toml(spec: ServiceSpec) -> str:
    """Write a spec back as TOML (used by `new`, `clone` and `init`); stdlib only, simple values."""
    d = _dict_to_toml_shape(spec.to_dict())
    lines: list[str] = []
    for table, values in d.items():
        if not values and table not in ("service",):
            continue
        lines.append(f"[{table}]")
        for key, value in values.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def check_name(spec: ServiceSpec) -> str:
    """The host name a health check presents (host/health.py, bundle/preflight.py): the first
    server name, made concrete for wildcards and `_`."""
    name = spec.effective_server_names[0]
    if name == "_":
        return "localhost"
    return "health" + name[1:] if name.startswith("*") else name
