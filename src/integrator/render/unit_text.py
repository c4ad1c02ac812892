"""Values written into systemd unit files, quoted per systemd.syntax(7): free text, Environment=
lines and ExecStart= arguments. Pure; every value has passed the spec's text checks before."""

from __future__ import annotations

import re

# Environment values made only of these characters need no quoting in a unit file (matched
# whole: `$` would let a final newline through).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:,+@=-]*")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def text(value: str) -> str:
    """Free text in a unit: `%` starts a specifier, so it is doubled. The spec has refused
    control characters, and a backslash at the end (a continuation line), before this."""
    return value.replace("%", "%%")


def env_line(key: str, value: str) -> str:
    """One Environment= line, quoted per systemd.syntax(7) when the value needs it.

    systemd unquotes and C-unescapes the word, then expands `%` specifiers: so `\\` and `"`
    are backslash-escaped, control characters written as escapes (the spec refuses them; this
    stays correct without that), and `%` doubled. A final backslash is escaped too, so the
    line never ends in one.
    """
    if _PLAIN_VALUE.fullmatch(value):
        return f"Environment={key}={value}"
    return f'Environment="{key}={_escaped(value)}"'


def exec_args(argv: list[str]) -> str:
    """An argv as the words of ExecStart=: each plain word as is, any other quoted and escaped
    like an Environment= value, and `$` doubled (systemd expands `$NAME` in arguments, never in
    the program). A lone `;` (which would end the command) is refused by the spec."""
    if ";" in argv:
        raise ValueError("a lone ';' cannot be an ExecStart= argument")
    words = [argv[0], *(a if a and _PLAIN_VALUE.fullmatch(a) else f'"{_escaped(a)}"' for a in argv[1:])]
    return " ".join(word.replace("$", "$$") if i else word for i, word in enumerate(words))


def _escaped(value: str) -> str:
    return "".join(_C_ESCAPES.get(ch, _control(ch)) for ch in value).replace("%", "%%")


def _control(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
