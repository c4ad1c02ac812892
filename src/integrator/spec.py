"""The service spec: one `service.toml` per service, validated strictly in one place.

Every renderer (systemd, nginx, gunicorn, SELinux) reads this object and nothing else, so
the generated files cannot disagree about names, paths or limits. Loading TOML is build-side
only; on a host the same spec travels as JSON (`to_dict` / `from_dict`, stdlib only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError

SPEC_FILE = "service.toml"

# A service name is a systemd unit name, a system user name, a directory and a Python
# package all at once: the intersection of those grammars.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*([._+-]?[A-Za-z0-9]+)*$")
# module.path:attribute  or  module.path:factory()  (a factory called with no arguments)
ENTRY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\(\))?$")
SERVER_NAME_RE = re.compile(r"^(_|\*?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
SIZE_RE = re.compile(r"^[0-9]+[KMGT]?$")
BODY_SIZE_RE = re.compile(r"^[0-9]+[kmg]?$")
PERCENT_RE = re.compile(r"^[0-9]+%$")
PATH_RE = re.compile(r"^/[^\s;{}'\"\\]*$")
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
RESERVED_NAMES = frozenset({"nginx", "root", "www_data", "systemd", "integrator", "test", "python", "site"})
# Environment variables the unit sets itself; a spec may not override them.
RESERVED_ENV = frozenset({"PATH", "PYTHONPATH", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "LISTEN_PID"})

NETWORK_MODES = ("none", "outbound")
TLS_MODES = ("self-signed", "provided")
DISTROS = ("debian", "rhel")


@dataclass(frozen=True)
class TlsSpec:
    """`self-signed`: generated on the host at first deploy. `provided`: paths on the host."""

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
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSpec:
        """Inverse of `to_dict`; validated again, since a bundle may have been edited."""
        return parse_spec(_dict_to_toml_shape(data), source="spec.json")


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
            raise SpecError(f"{source}: unknown table [{table}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(value, dict):
            raise SpecError(f"{source}: [{table}] must be a table")
        if table == "env":
            for key, val in value.items():
                if not isinstance(val, str):
                    raise SpecError(f"{source}: [env] {key} must be a string (quote numbers)")
            continue
        for key, val in value.items():
            expected = _SCHEMA[table].get(key)
            if expected is None:
                known = ", ".join(_SCHEMA[table])
                raise SpecError(f"{source}: unknown key [{table}] {key} (known: {known})")
            # bool is an int subclass: `workers = true` must not pass as 1
            if not isinstance(val, expected) or (expected is int and isinstance(val, bool)):
                raise SpecError(f"{source}: [{table}] {key} must be {_TYPE_NAMES[expected]}, got {val!r}")
            if isinstance(val, list) and not all(isinstance(item, str) for item in val):
                raise SpecError(f"{source}: [{table}] {key} must be a list of strings")


def _fail_unless(ok: bool, source: str, field_name: str, why: str) -> None:
    if not ok:
        raise SpecError(f"{source}: {field_name} {why}")


def _check_values(s: ServiceSpec, src: str) -> None:
    _fail_unless(
        bool(NAME_RE.match(s.name)),
        src,
        "[service] name",
        f"{s.name!r} is not valid: use a-z, 0-9 and _, starting with a letter, at most 31 characters "
        "(it is the unit name, the system user and the Python package)",
    )
    _fail_unless(
        s.name not in SYSTEM_ACCOUNTS,
        src,
        "[service] name",
        f"{s.name!r} is a system or service account on Debian or RHEL: choose another name",
    )
    _fail_unless(s.name not in RESERVED_NAMES, src, "[service] name", f"{s.name!r} is reserved")
    _fail_unless(
        bool(VERSION_RE.match(s.version)), src, "[service] version", f"{s.version!r} is not a version"
    )
    _fail_unless(
        bool(ENTRY_RE.match(s.entry)),
        src,
        "[service] entry",
        f"{s.entry!r} must look like 'package.module:app' or 'package.module:create_app()'",
    )
    _fail_unless("\n" not in s.description, src, "[service] description", "must be one line")
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
            bool(SERVER_NAME_RE.match(name)), src, "[http] server_names", f"{name!r} is not a host name"
        )
    _fail_unless(
        s.health_path.startswith("/") and bool(PATH_RE.match(s.health_path)),
        src,
        "[http] health_path",
        f"{s.health_path!r} must be an absolute URL path",
    )
    _fail_unless(
        bool(BODY_SIZE_RE.match(s.max_body)), src, "[http] max_body", f"{s.max_body!r}: use e.g. '10m'"
    )
    _check_tls(s.tls, src)
    for key, _ in s.env:
        _fail_unless(bool(ENV_NAME_RE.match(key)), src, "[env]", f"{key!r} is not a valid variable name")
        _fail_unless(key not in RESERVED_ENV, src, "[env]", f"{key} is set by integrator itself")
    for secret in s.secrets:
        _fail_unless(
            bool(SECRET_NAME_RE.match(secret)), src, "[secrets] files", f"{secret!r} is not a valid name"
        )
    _fail_unless(len(set(s.secrets)) == len(s.secrets), src, "[secrets] files", "has duplicates")
    _fail_unless(
        s.limits.memory_max == "" or bool(SIZE_RE.match(s.limits.memory_max)),
        src,
        "[limits] memory_max",
        f"{s.limits.memory_max!r}: use e.g. '512M'",
    )
    _fail_unless(
        s.limits.cpu_quota == "" or bool(PERCENT_RE.match(s.limits.cpu_quota)),
        src,
        "[limits] cpu_quota",
        f"{s.limits.cpu_quota!r}: use e.g. '200%'",
    )
    _fail_unless(
        s.network in NETWORK_MODES, src, "[security] network", f"must be one of {', '.join(NETWORK_MODES)}"
    )


def _check_tls(tls: TlsSpec, src: str) -> None:
    _fail_unless(tls.mode in TLS_MODES, src, "[tls] mode", f"must be one of {', '.join(TLS_MODES)}")
    if tls.mode == "provided":
        for key, value in (("cert", tls.cert), ("key", tls.key)):
            _fail_unless(value is not None, src, f"[tls] {key}", "is required when mode = 'provided'")
            _fail_unless(
                bool(PATH_RE.match(value or "")), src, f"[tls] {key}", f"{value!r} must be an absolute path"
            )
    else:
        _fail_unless(
            tls.cert is None and tls.key is None, src, "[tls]", "cert/key only go with mode = 'provided'"
        )


def _dict_to_toml_shape(d: Mapping[str, Any]) -> dict[str, Any]:
    """Map the flat `to_dict` form back onto the TOML tables `parse_spec` validates."""
    tls = {k: v for k, v in d["tls"].items() if v is not None}
    return {
        "service": {k: d[k] for k in ("name", "version", "entry", "description")},
        "server": {k: d[k] for k in ("workers", "threads", "timeout", "graceful_timeout")},
        "http": {
            k: d[k]
            for k in (
                "server_names",
                "default_server",
                "http_port",
                "https_port",
                "health_path",
                "max_body",
                "hsts",
            )
        },
        "tls": tls,
        "env": dict(d["env"]),
        "secrets": {"files": list(d["secrets"])},
        "limits": dict(d["limits"]),
        "security": {k: d[k] for k in ("network", "memory_deny_write_execute")},
        "deploy": {"keep_releases": d["keep_releases"]},
    }


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
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else _toml_value(key)


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
