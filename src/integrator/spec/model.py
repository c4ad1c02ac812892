"""The service spec, declared once: one frozen dataclass per table of service.toml.

Each field carries its default, type and help (`declare.setting`/`required`); the schema,
parsing, JSON, the TOML writer and the template's comment are derived from these declarations.
To add a field: declare it in its table below (and name it in that table's comment), check its
value in checks.py if a range or choices do not say enough, and use it in a renderer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from . import codec
from .checks import check_values
from .declare import entries, required, setting, table
from .text import NETWORK_MODES, SPEC_FILE, TLS_MODES


@dataclass(frozen=True)
class Service:
    name: str = required("also the systemd unit, the system user and the Python package")
    version: str = required("the release's version, e.g. 1.2.0")
    entry: str = required('the WSGI callable "module:app" or factory "module:create_app()"')
    description: str = setting("", "one line of free text: the unit's Description=")


@dataclass(frozen=True)
class Server:
    workers: int = setting(2, "gunicorn worker processes", low=1, high=64)
    threads: int = setting(4, "threads per worker", low=1, high=256)
    timeout: int = setting(30, "seconds a request may take before its worker is restarted", low=1, high=3600)
    graceful_timeout: int = setting(30, "seconds a worker gets to finish on a restart", low=1, high=3600)


@dataclass(frozen=True)
class Http:
    server_names: tuple[str, ...] = setting((), "nginx server_name values (default: the service's name)")
    default_server: bool = setting(False, "this site answers requests for unknown host names")
    http_port: int = setting(80, "plain HTTP port (redirects to https)", low=1, high=65535)
    https_port: int = setting(443, "HTTPS port", low=1, high=65535)
    health_path: str = setting("/healthz", "URL path checked before a release goes live")
    max_body: str = setting("10m", "largest request body, nginx's client_max_body_size")
    hsts: bool = setting(True, "send Strict-Transport-Security")


@dataclass(frozen=True)
class TlsSpec:
    """`self-signed`: generated on the host. `local-ca`: issued by the host's own CA (which the
    operator may place there first). `provided`: paths on the host. The first two are renewed by
    a deploy. No CA path comes from the spec: a bundle author must not choose the host's CA."""

    mode: str = setting("self-signed", "where the certificate comes from", choices=TLS_MODES)
    cert: str | None = setting(None, "certificate path on the host (mode = provided only)")
    key: str | None = setting(None, "private key path on the host (mode = provided only)")


@dataclass(frozen=True)
class Env:
    vars: tuple[tuple[str, str], ...] = setting((), "environment variables of the service, sorted")


@dataclass(frozen=True)
class Secrets:
    files: tuple[str, ...] = setting((), "credential names, supplied at deploy with --secret NAME=FILE")


@dataclass(frozen=True)
class Limits:
    """systemd resource controls; empty string = no limit."""

    memory_max: str = setting("512M", "systemd MemoryMax=")
    cpu_quota: str = setting("200%", "systemd CPUQuota=")
    tasks_max: int = setting(256, "systemd TasksMax=", low=16, high=1_000_000)


@dataclass(frozen=True)
class Security:
    network: str = setting("none", "none: unix socket only; outbound: may connect out", choices=NETWORK_MODES)
    memory_deny_write_execute: bool = setting(True, "systemd MemoryDenyWriteExecute=")


@dataclass(frozen=True)
class Deploy:
    keep_releases: int = setting(5, "releases kept on the host for rollback", low=2, high=100)
    release: tuple[str, ...] = setting(
        (), 'a command (argv) run once per deploy before the switch, e.g. ["flask", "db", "upgrade"]'
    )
    release_timeout: int = setting(600, "seconds the release command may run", low=1, high=86400)


@dataclass(frozen=True)
class Package:
    """What the app wheel holds beyond the rules of project/files.py (.gitignore-style patterns)."""

    include: tuple[str, ...] = setting((), "files the rules leave out that the app needs, e.g. instance/")
    exclude: tuple[str, ...] = setting((), "files not to package; wins over include")
    extras: tuple[str, ...] = setting(
        (),
        "optional dependency groups of a packaged project to install too, e.g. server (pip's NAME[server])",
    )
    requires: tuple[str, ...] = setting(
        (), "requirements to install beyond the project's own, e.g. tzdata (init adds it for Django)"
    )
    build: tuple[str, ...] = setting(
        (),
        "a command (argv) `bundle` runs in the project with its dependencies before packaging, "
        'e.g. ["python", "manage.py", "collectstatic", "--noinput"]',
    )


@dataclass(frozen=True)
class Static:
    paths: tuple[tuple[str, str], ...] = setting(
        (), 'URL prefix -> directory of the project that nginx serves, e.g. "/static/" = "static"'
    )


@dataclass(frozen=True)
class Process:
    command: tuple[str, ...] = required(
        'argv run from the serving release, e.g. ["python", "-m", "shop.worker"]'
    )


@dataclass(frozen=True)
class Processes:
    """Long-running processes beside the web one (a queue consumer): NAME-proc-X.service each."""

    named: tuple[tuple[str, Process], ...] = entries(
        Process, "one table per worker, run as unit SERVICE-proc-NAME.service"
    )


@dataclass(frozen=True)
class Timer:
    command: tuple[str, ...] = required('argv run from the serving release, e.g. ["flask", "prune"]')
    on_calendar: str = required('when, systemd OnCalendar= syntax, e.g. "daily" or "Mon..Fri 03:00"')
    timeout: int = setting(3600, "seconds one run may take before it is stopped", low=1, high=86400)


@dataclass(frozen=True)
class Timers:
    """Commands run on a calendar: NAME-timer-X.timer starting NAME-timer-X.service each."""

    named: tuple[tuple[str, Timer], ...] = entries(
        Timer, "one table per timer: units SERVICE-timer-NAME.timer and .service"
    )


@dataclass(frozen=True)
class ServiceSpec:
    """A validated service.toml. Frozen: renderers cannot change it behind each other's back."""

    service: Service = table(
        Service,
        "name (also the systemd unit, system user and Python package), version,\n"
        'entry (WSGI callable "module:app" or factory "module:create_app()"), description',
        needed=True,
    )
    server: Server = table(
        Server, "gunicorn: workers, threads per worker, timeout and graceful_timeout (seconds)"
    )
    http: Http = table(
        Http,
        "nginx: server_names (default: the name), default_server, http_port (redirects\n"
        "to https), https_port, health_path (checked before a release goes live),\n"
        "max_body, hsts",
    )
    tls: TlsSpec = table(
        TlsSpec,
        'mode = "self-signed" (made on the host), "local-ca" (issued by the host\'s CA,\n'
        'see docs/security.md) or "provided" with cert and key paths',
    )
    env: Env = table(
        Env, 'plain settings, e.g. {NAME}_GREETING = "hi" (Flask config GREETING); no secrets here'
    )
    secrets: Secrets = table(
        Secrets,
        'files = ["db_password"]: supplied with `integrator deploy --secret db_password=FILE`,\n'
        "read by the app from $CREDENTIALS_DIRECTORY/db_password (see README.md)",
    )
    limits: Limits = table(Limits, 'systemd: memory_max ("512M"), cpu_quota ("200%"), tasks_max')
    security: Security = table(
        Security, 'network = "none" (unix socket only) or "outbound"; memory_deny_write_execute'
    )
    deploy: Deploy = table(
        Deploy,
        "keep_releases: how many releases stay on the host for rollback; release: a command\n"
        'run before the switch with the new release (["flask", "db", "upgrade"]), release_timeout',
    )
    package: Package = table(
        Package,
        'include = ["instance/"], exclude = ["*.sqlite3"]: what the app wheel holds (docs/adopt.md);\n'
        'extras = ["server"]: optional dependencies of a packaged project to install too;\n'
        'requires = ["tzdata"]: more requirements to install;\n'
        'build = ["python", "manage.py", "collectstatic", "--noinput"]: run by bundle before packaging',
    )
    static: Static = table(
        Static, '"/static/" = "static": URL prefixes nginx serves from directories of the release'
    )
    processes: Processes = table(
        Processes,
        '[processes.worker] command = ["python", "-m", "PKG.worker"]: workers beside the web\n'
        "process, same user, venv, environment, secrets and sandbox (docs/processes.md)",
    )
    timers: Timers = table(
        Timers,
        '[timers.prune] command = [...], on_calendar = "daily" (systemd OnCalendar=), timeout:\n'
        "commands run on a calendar, like the workers (docs/processes.md)",
    )

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def version(self) -> str:
        return self.service.version

    @property
    def entry(self) -> str:
        return self.service.entry

    @property
    def wsgi_module(self) -> str:
        return self.entry.split(":", 1)[0]

    @property
    def wsgi_callable(self) -> str:
        """The name the entry's module binds: `create_app` of `shop:create_app(debug=False)`."""
        return self.entry.split(":", 1)[1].split("(", 1)[0]

    @property
    def wsgi_app(self) -> str:
        """gunicorn's APP_MODULE form: `pkg.mod:create_app()` is accepted by gunicorn >= 20.1."""
        return self.entry

    @property
    def effective_server_names(self) -> tuple[str, ...]:
        return self.http.server_names or (self.name,)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a bundle carries to the host (where no TOML parser may exist)."""
        return codec.to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "spec.json") -> ServiceSpec:
        """Inverse of `to_dict` (and of the flat form older integrators wrote); validated again,
        whole, like service.toml: a bundle may have been edited, and its author is trusted less
        than the host's root."""
        return parse_spec(codec.json_to_shape(cls, data, source), source=source)


def parse_spec(data: Mapping[str, Any], *, source: str = SPEC_FILE) -> ServiceSpec:
    """Validate a TOML-shaped mapping; every error names the file and the field."""
    spec: ServiceSpec = codec.from_shape(ServiceSpec, data, source)
    check_values(spec, source)
    return spec


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


def dump_spec_toml(spec: ServiceSpec) -> str:
    """Write a spec back as TOML (used by `new`, `clone` and `init`); stdlib only, simple values."""
    return codec.dump_toml(spec)


def spec_comment(env_prefix: str) -> str:
    """The commented list of tables the template's service.toml starts with (`init`, `new`)."""
    return codec.comment(ServiceSpec, env_prefix)


def check_name(spec: ServiceSpec) -> str:
    """The host name a health check presents (host/health.py, bundle/preflight.py): the first
    server name, made concrete for wildcards and `_`."""
    name = spec.effective_server_names[0]
    if name == "_":
        return "localhost"
    return "health" + name[1:] if name.startswith("*") else name
