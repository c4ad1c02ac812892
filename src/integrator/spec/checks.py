"""Value checks of a typed spec: every text first, then declared ranges and choices, then the
rules a declaration cannot say (patterns, fields that depend on each other)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .declare import entry_table, tables
from .text import (
    BODY_SIZE_RE,
    CALENDAR_MAX,
    CALENDAR_RE,
    DESCRIPTION_MAX,
    ENTRY_MAX,
    ENTRY_RE,
    ENV_NAME_RE,
    ENV_VALUE_MAX,
    EXTRA_RE,
    PACKAGE_PATTERN_RE,
    PATH_RE,
    PERCENT_RE,
    PROCESS_NAME_RE,
    PROCESSES_MAX,
    PROGRAM_RE,
    RELEASE_ARG_MAX,
    RELEASE_ARGS_MAX,
    REQUIREMENT_RE,
    RESERVED_ENV,
    SERVER_NAME_RE,
    SIZE_RE,
    STATIC_DIR_RE,
    STATIC_MAX,
    STATIC_PREFIX_RE,
    SYSTEM_ACCOUNTS,
    URL_PATH_RE,
    VERSION_MAX,
    VERSION_RE,
    check_secret_name,
    check_service_name,
    check_text,
    fail_unless,
    fullmatch,
    show,
)

if TYPE_CHECKING:
    from .model import ServiceSpec, TlsSpec


def declared_values(s: ServiceSpec) -> list[tuple[Any, Any]]:
    """(declared key, value) for every key of every table of `s`, and of every entry of a table
    of named tables (`[processes.NAME] command`)."""
    found: list[tuple[Any, Any]] = []
    for key in (k for t in tables(type(s)) for k in t.keys):
        value = getattr(getattr(s, key.table), key.name)
        found.append((key, value))
        for name, entry in value if key.entry else ():
            found += [(sub, getattr(entry, sub.name)) for sub in entry_table(key, name).keys]
    return found


def text_fields(s: ServiceSpec) -> list[tuple[str, str]]:
    """Every text of a spec with the field it came from: all of them reach files on a host."""
    found: list[tuple[str, str]] = []
    for key, value in declared_values(s):
        if key.free:  # the key is checked before its value: the label may name it
            for name, text in value:  # entries of [processes.NAME]: their own keys follow
                found += (
                    [(key.label, name)] if key.entry else [(key.label, name), (f"{key.label} {name}", text)]
                )
        elif key.kind is str:
            found.append((key.label, value or ""))
        elif key.kind is list:
            found += [(key.label, item) for item in value]
    return found


def check_values(s: ServiceSpec, src: str) -> None:
    for field_name, text in text_fields(s):
        check_text(text, f"{src}: {field_name}")
    for key, value in declared_values(s):
        if key.low is not None and key.high is not None:
            ok = key.low <= value <= key.high
            fail_unless(ok, src, key.label, f"must be between {key.low} and {key.high}, got {value}")
        if key.choices:
            fail_unless(value in key.choices, src, key.label, f"must be one of {', '.join(key.choices)}")
    _check_service(s, src)
    http = s.http
    fail_unless(http.http_port != http.https_port, src, "[http] https_port", "must differ from http_port")
    for name in http.server_names:
        ok = fullmatch(SERVER_NAME_RE, name)
        fail_unless(ok, src, "[http] server_names", f"{show(name)} is not a host name")
    fail_unless(
        fullmatch(URL_PATH_RE, http.health_path),
        src,
        "[http] health_path",
        f"{show(http.health_path)} must be an absolute URL path (ASCII, no spaces or quotes)",
    )
    ok = fullmatch(BODY_SIZE_RE, http.max_body)
    fail_unless(ok, src, "[http] max_body", f"{show(http.max_body)}: use e.g. '10m'")
    _check_tls(s.tls, src)
    for key, env_value in s.env.vars:
        fail_unless(fullmatch(ENV_NAME_RE, key), src, "[env]", f"{show(key)} is not a valid variable name")
        fail_unless(key not in RESERVED_ENV, src, "[env]", f"{key} is set by integrator itself")
        fail_unless(
            len(env_value) <= ENV_VALUE_MAX, src, f"[env] {key}", f"is longer than {ENV_VALUE_MAX} characters"
        )
    secrets = s.secrets.files
    for secret in secrets:
        check_secret_name(secret, f"{src}: [secrets] files")
    fail_unless(len(set(secrets)) == len(secrets), src, "[secrets] files", "has duplicates")
    _check_package(s, src)
    _check_static(s, src)
    _check_command(s.deploy.release, src, "[deploy] release")
    _check_command(s.package.build, src, "[package] build")
    _check_processes(s, src)
    limits = s.limits
    fail_unless(
        limits.memory_max == "" or fullmatch(SIZE_RE, limits.memory_max),
        src,
        "[limits] memory_max",
        f"{show(limits.memory_max)}: use e.g. '512M'",
    )
    fail_unless(
        limits.cpu_quota == "" or fullmatch(PERCENT_RE, limits.cpu_quota),
        src,
        "[limits] cpu_quota",
        f"{show(limits.cpu_quota)}: use e.g. '200%'",
    )


def _check_command(argv: tuple[str, ...], src: str, where: str) -> None:
    """[deploy] release, [package] build, [processes.X] and [timers.X] command: an argv whose
    program is a name in the venv or an absolute path."""
    fail_unless(len(argv) <= RELEASE_ARGS_MAX, src, where, f"has more than {RELEASE_ARGS_MAX} arguments")
    for arg in argv:
        fail_unless(
            len(arg) <= RELEASE_ARG_MAX,
            src,
            where,
            f"has an argument longer than {RELEASE_ARG_MAX} characters",
        )
    if argv:
        ok = fullmatch(PROGRAM_RE, argv[0])
        fail_unless(ok, src, where, f"{show(argv[0])}: the program must be a plain name or an absolute path")


def _check_processes(s: ServiceSpec, src: str) -> None:
    """Names fit a unit name and differ across both tables (`logs --process X` names one); the
    commands are argvs like the release command; calendars match systemd's syntax whole."""
    procs, timers = s.processes.named, s.timers.named
    for table, named in (("processes", procs), ("timers", timers)):
        fail_unless(len(named) <= PROCESSES_MAX, src, f"[{table}]", f"has more than {PROCESSES_MAX} entries")
        for name, entry in named:
            ok = fullmatch(PROCESS_NAME_RE, name)
            why = "must be a name of lowercase letters, digits and _ (at most 32, starting with a letter)"
            fail_unless(ok, src, f"[{table}]", f"{show(name)} {why}")
            fail_unless(bool(entry.command), src, f"[{table}.{name}] command", "is empty")
            where = f"[{table}.{name}] command"
            _check_command(entry.command, src, where)
            # ExecStart= would end the command at a lone `;` (systemd-run's argv would not)
            fail_unless(";" not in entry.command, src, where, "has a lone ';' argument: quote it differently")
    both = sorted({n for n, _ in procs} & {n for n, _ in timers})
    fail_unless(not both, src, "[timers]", f"{both[0] if both else ''} is a process's name too: rename one")
    for name, timer in timers:
        cal = timer.on_calendar
        ok = len(cal) <= CALENDAR_MAX and fullmatch(CALENDAR_RE, cal)
        why = "is not a calendar event (systemd.time(7), e.g. 'daily', 'Mon..Fri 03:00', '*:0/15')"
        fail_unless(ok, src, f"[timers.{name}] on_calendar", f"{show(cal)} {why}")


def _check_service(s: ServiceSpec, src: str) -> None:
    check_service_name(s.name, f"{src}: [service] name")
    fail_unless(
        s.name not in SYSTEM_ACCOUNTS,
        src,
        "[service] name",
        f"{s.name!r} is a system or service account on Debian or RHEL: choose another name",
    )
    fail_unless(
        len(s.version) <= VERSION_MAX and fullmatch(VERSION_RE, s.version),
        src,
        "[service] version",
        f"{show(s.version)} is not a version (e.g. 1.2.0; at most {VERSION_MAX} characters)",
    )
    fail_unless(
        len(s.entry) <= ENTRY_MAX and fullmatch(ENTRY_RE, s.entry),
        src,
        "[service] entry",
        f"{show(s.entry)} must look like 'package.module:app', 'package.module:create_app()' or "
        "'package.module:create_app(debug=False,root=\"~\")' (literal keyword arguments, no spaces)",
    )
    _check_description(s.service.description, src)


def _check_description(text: str, src: str) -> None:
    """Free text in Description=: systemd strips the ends and joins a line ending in a backslash."""
    field_name = "[service] description"
    fail_unless(len(text) <= DESCRIPTION_MAX, src, field_name, f"is longer than {DESCRIPTION_MAX} characters")
    fail_unless(text == text.strip(), src, field_name, f"{show(text)} starts or ends with whitespace")
    fail_unless(not text.endswith("\\"), src, field_name, f"{show(text)} ends with a backslash")


def _check_tls(tls: TlsSpec, src: str) -> None:
    if tls.mode == "provided":
        for key, value in (("cert", tls.cert), ("key", tls.key)):
            fail_unless(value is not None, src, f"[tls] {key}", "is required when mode = 'provided'")
            fail_unless(
                fullmatch(PATH_RE, value or ""),
                src,
                f"[tls] {key}",
                f"{show(value or '')} must be an absolute path (letters, digits, . _ + @ , = : / -)",
            )
    else:
        fail_unless(
            tls.cert is None and tls.key is None, src, "[tls]", "cert/key only go with mode = 'provided'"
        )


def _check_package(s: ServiceSpec, src: str) -> None:
    for key, patterns in (("include", s.package.include), ("exclude", s.package.exclude)):
        for pattern in patterns:
            ok = fullmatch(PACKAGE_PATTERN_RE, pattern) and ".." not in pattern.split("/")
            why = "is not a pattern of the project's files (.gitignore syntax, no '..')"
            fail_unless(ok, src, f"[package] {key}", f"{show(pattern)} {why}")
    for extra in s.package.extras:
        ok = fullmatch(EXTRA_RE, extra)
        fail_unless(
            ok, src, "[package] extras", f"{show(extra)} is not an extra's name (letters, digits, . _ -)"
        )
    for requirement in s.package.requires:
        ok = fullmatch(REQUIREMENT_RE, requirement)
        why = "is not a requirement like tzdata or tzdata>=2024.1 (no URL, marker or option)"
        fail_unless(ok, src, "[package] requires", f"{show(requirement)} {why}")


def _check_static(s: ServiceSpec, src: str) -> None:
    """Prefixes nginx answers itself: never the health path (the app must answer it), never `/`."""
    paths = s.static.paths
    fail_unless(len(paths) <= STATIC_MAX, src, "[static]", f"has more than {STATIC_MAX} entries")
    for prefix, directory in paths:
        fail_unless(
            fullmatch(STATIC_PREFIX_RE, prefix),
            src,
            "[static]",
            f"{show(prefix)} must be a URL prefix like /static/ (starts and ends with /, not /)",
        )
        fail_unless(
            fullmatch(STATIC_DIR_RE, directory),
            src,
            f"[static] {prefix}",
            f"{show(directory)} must be a directory of the project like static or shop/static",
        )
        fail_unless(
            not s.http.health_path.startswith(prefix),
            src,
            f"[static] {prefix}",
            f"would serve [http] health_path {s.http.health_path} from files: the app must answer it",
        )
