"""The rules for every text of a spec, and the patterns its values must match whole.

Text fields, the rule (every value reaches a unit, an nginx site or a path as root):
- No field may hold a control character (C0, DEL, C1 such as U+0085), a line or paragraph
  separator (U+2028/2029), a format character (bidi overrides, zero-width, BOM) or a lone
  surrogate: systemd ends a line at CR as well as LF, Python's tokenizer too, and a value must
  never start a line of its own. Checked first, for every text (`checks.text_fields`).
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

from ..errors import SpecError

SPEC_FILE = "service.toml"

# Patterns are matched whole (`fullmatch`), never with `match`/`$`.
# A service name is a systemd unit name, a system user name, a directory and a Python
# package all at once: the intersection of those grammars.
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
# Digits and dots, then letters, digits and single separators; no nested repetition, so a
# long near-miss fails at once instead of backtracking exponentially.
VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+)*([._+-]?[A-Za-z0-9])*")
VERSION_MAX = 64
# `module:app`, `module:create_app()`, or a factory called with keyword arguments that are literals
# only (gunicorn >= 20.1 reads them with ast.literal_eval): a double-quoted string of safe
# characters, an integer, True/False/None, or a list of such strings; no spaces, no single quote.
_STR = r'"[A-Za-z0-9._/~-]*"'
_LITERAL = rf"({_STR}|-?[0-9]{{1,9}}|True|False|None|\[({_STR}(,{_STR})*)?\])"
_KWARG = rf"[A-Za-z_][A-Za-z0-9_]*={_LITERAL}"
ENTRY_RE = re.compile(
    rf"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\(({_KWARG}(,{_KWARG})*)?\))?"
)
ENTRY_MAX = 200
# `_`, a host name, or `*.` and a host name (nginx's only leading wildcard form).
SERVER_NAME_RE = re.compile(r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ENV_VALUE_MAX = 4096
# [deploy] release: the program is a name in the release's venv (or /usr/bin) or an absolute path
PROGRAM_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}|/[A-Za-z0-9._+@,=:/-]{1,1023}")
RELEASE_ARGS_MAX = 64
RELEASE_ARG_MAX = 4096
# [processes.NAME], [timers.NAME]: part of a unit name (NAME-proc-X.service), no `-` (the
# separator), so no two services', processes' or timers' units can ever share a name.
PROCESS_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
PROCESSES_MAX = 16  # of each kind
# [timers.NAME] on_calendar: systemd.time(7)'s calendar events, a strict subset matched whole
# (`systemd-analyze calendar` checks it again on the host before a deploy writes the timer).
CALENDAR_MAX = 128
_CAL_VALUE = r"(\*|[0-9]{1,4}(\.\.[0-9]{1,4})?)(/[0-9]{1,4})?"
_CAL_LIST = rf"{_CAL_VALUE}(,{_CAL_VALUE}){{0,31}}"
_CAL_DAY = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_CAL_DAYS = rf"{_CAL_DAY}(\.\.{_CAL_DAY})?(,{_CAL_DAY}(\.\.{_CAL_DAY})?){{0,6}}"
_CAL_DATE = rf"({_CAL_LIST}-)?{_CAL_LIST}(-|~){_CAL_LIST}"
_CAL_TIME = rf"{_CAL_LIST}:{_CAL_LIST}(:{_CAL_LIST})?"
_CAL_ZONE = r"UTC|[A-Z][A-Za-z_]{1,31}(/[A-Z][A-Za-z_+-]{1,31}){1,2}"
_CAL_SHORT = "minutely|hourly|daily|weekly|monthly|quarterly|semiannually|yearly|annually"
CALENDAR_RE = re.compile(
    rf"{_CAL_SHORT}|({_CAL_DAYS} )?({_CAL_DATE} {_CAL_TIME}|{_CAL_DATE}|{_CAL_TIME})( ({_CAL_ZONE}))?"
)
SECRET_NAME_RE = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
SIZE_RE = re.compile(r"[0-9]{1,15}[KMGT]?")
BODY_SIZE_RE = re.compile(r"[0-9]{1,9}[kmg]?")
PERCENT_RE = re.compile(r"[0-9]{1,7}%")
# A file on the host (nginx reads it): no space, quote, `;`, `{`, `}`, `$`, `%` or backslash.
PATH_RE = re.compile(r"/[A-Za-z0-9._+@,=:/-]{0,1023}")
# An HTTP request path (the health check sends it as is): printable ASCII, no quote or space.
URL_PATH_RE = re.compile(r"/[A-Za-z0-9._~!&()*+,=:@%/?-]{0,1023}")
DESCRIPTION_MAX = 200
# [package] patterns (.gitignore syntax, relative to the project): no `..`, no control or quote.
PACKAGE_PATTERN_RE = re.compile(r"!?[A-Za-z0-9._*?\[\]/-]{1,255}")
EXTRA_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")  # PEP 685 extra names
# `[package] requires`: a name, extras and version clauses; no URL, no marker, no pip option.
REQUIREMENT_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(\[[A-Za-z0-9._,-]{1,100}\])?"
    r"((===?|!=|<=?|>=?|~=)[A-Za-z0-9.*+!_-]{1,50}(,(===?|!=|<=?|>=?|~=)[A-Za-z0-9.*+!_-]{1,50}){0,5})?"
)
# [static]: a URL prefix `/a/b/` (segments not starting with `.`), a project directory `a/b`.
STATIC_PREFIX_RE = re.compile(r"/([A-Za-z0-9_~-][A-Za-z0-9._~-]{0,63}/){1,8}")
STATIC_DIR_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}){0,7}")
STATIC_MAX = 16
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


BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def label(key: object) -> str:
    """A key as typed (`wokers`), or quoted and escaped when it is anything stranger."""
    text = str(key)
    return text if BARE_KEY.fullmatch(text) else show(text)


def fail_unless(ok: bool, source: str, field_name: str, why: str) -> None:
    if not ok:
        raise SpecError(f"{source}: {field_name} {why}")


def show(value: str, limit: int = 60) -> str:
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
            f"{where} {show(value)} contains a control character (U+{ord(ch):04X}): use printable text"
        )


def fullmatch(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def check_service_name(name: str, where: str = "service name") -> str:
    """The one rule for a service name, in service.toml and for every host verb's NAME: the
    name becomes paths under /opt, /etc, /var/lib and /run, a user, units and an nginx site."""
    check_text(name, where)
    if not fullmatch(NAME_RE, name):
        raise SpecError(
            f"{where} {show(name)} is not valid: use a-z, 0-9 and _, starting with a letter, at most "
            "31 characters (it is the unit name, the system user and the Python package)"
        )
    if name in RESERVED_NAMES:
        raise SpecError(f"{where} {name!r} is reserved: choose another name")
    return name


def check_secret_name(name: str, where: str) -> str:
    """A secret becomes a file name under /etc/integrator/NAME/credentials and a credential id."""
    check_text(name, where)
    if not fullmatch(SECRET_NAME_RE, name):
        raise SpecError(f"{where} {show(name)} is not a valid name: use a-z, 0-9, _ . -, at most 63")
    return name
