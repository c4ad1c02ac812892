"""Readers for rendered files, modelled on how systemd, nginx and Python read them.

The property tests compare what these readers see in a file rendered from a hostile value
with what they see in the same file rendered from a benign one. The models follow the
programs' own parsers, not our renderers:

- systemd (`src/shared/conf-parser.c`, `fileio.c` read_line): a line ends at `\\n`, `\\r` or
  NUL; a line whose first non-blank character is `#` or `;` is a comment, even inside a
  continuation; a line ending in an odd number of backslashes continues on the next line (the
  last backslash becomes a space); `[Section]`; `Key=value`, both stripped. Environment= and
  Exec*= values are split into words (quotes, C escapes); `%%` is one `%`, any other `%x` is a
  specifier.
- nginx (`ngx_conf_file.c` ngx_conf_read_token): tokens are split by space, tab, CR and LF;
  `;` ends a directive, `{` opens a block, `}` closes it; `#` at the start of a token is a
  comment up to LF only; quotes; a backslash keeps the next character in the token, and only
  `\\"`, `\\'`, `\\\\`, `\\t`, `\\r`, `\\n` are resolved (`\\.` stays).
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

SYSTEMD_LINE_END = re.compile(r"\r\n|[\r\n\x00]")
SYSTEMD_BLANKS = " \t\n\r"
# systemd settings that expand specifiers in our units (CPUQuota= and MemoryMax= do not).
NO_SPECIFIERS = frozenset({"CPUQuota", "MemoryMax", "TasksMax"})
WORD_KEYS = frozenset({"Environment", "ExecStart", "ExecReload", "ExecPaths", "After"})


class ParseError(AssertionError):
    """The file does not read the way the renderer meant it to."""


@dataclass(frozen=True)
class Directive:
    """One setting as the program reads it: where, which key, which decoded value(s)."""

    where: tuple[str, ...]
    key: str
    value: tuple[str, ...]


# --- systemd ---------------------------------------------------------------------------------


def systemd_lines(text: str) -> list[str]:
    """Logical lines: comments dropped, continuations joined, exactly as conf-parser.c does."""
    out: list[str] = []
    continuation: str | None = None
    for raw in SYSTEMD_LINE_END.split(text):
        if raw.lstrip(SYSTEMD_BLANKS)[:1] in ("#", ";"):
            continue
        line = raw if continuation is None else continuation + raw
        escaped = False
        for ch in line:
            escaped = not escaped if ch == "\\" else False
        if escaped:
            continuation = line[:-1] + " "
            continue
        continuation = None
        out.append(line)
    if continuation is not None:
        out.append(continuation)
    return out


def systemd_directives(text: str) -> list[Directive]:
    section = ""
    found: list[Directive] = []
    for line in systemd_lines(text):
        line = line.strip(SYSTEMD_BLANKS)
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ParseError(f"systemd: missing '=' in {line!r}")
        key, value = key.strip(SYSTEMD_BLANKS), value.strip(SYSTEMD_BLANKS)
        if key in WORD_KEYS:
            words = tuple(specifiers(w) for w in systemd_words(value))
        else:
            words = (value if key in NO_SPECIFIERS else specifiers(value),)
        found.append(Directive((section,), key, words))
    return found


def specifiers(value: str) -> str:
    """Expand `%%`; any other specifier means unescaped text reached the unit."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "%":
            if value[i + 1 : i + 2] != "%":
                raise ParseError(f"systemd: specifier {value[i : i + 2]!r} in {value!r}")
            out.append("%")
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


_C_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}
_C_SIMPLE |= {"\\": "\\", '"': '"', "'": "'"}


def systemd_words(value: str) -> list[str]:
    """extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), repeated."""
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in SYSTEMD_BLANKS:
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = ""
        while i < n and (quote or value[i] not in SYSTEMD_BLANKS):
            ch = value[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise ParseError(f"systemd: trailing backslash in {value!r}")
                nxt = value[i + 1]
                if nxt == "x":
                    word.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                if nxt not in _C_SIMPLE:
                    raise ParseError(f"systemd: unknown escape \\{nxt} in {value!r}")
                word.append(_C_SIMPLE[nxt])
                i += 2
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "\"'":
                quote = ch
            else:
                word.append(ch)
            i += 1
        if quote:
            raise ParseError(f"systemd: unterminated quote in {value!r}")
        words.append("".join(word))


# --- nginx -----------------------------------------------------------------------------------

NGINX_SPACE = " \t\r\n"


def nginx_tokens(text: str) -> list[str]:
    """Tokens, with `;`, `{` and `}` as their own tokens; comments and quotes resolved."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in NGINX_SPACE:
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in ";{}":
            tokens.append(ch)
            i += 1
        elif ch in "\"'":
            start = i = i + 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise ParseError("nginx: unterminated quote")
            tokens.append(_nginx_unescape(text[start:i]))
            i += 1
        else:
            start = i
            while i < n and text[i] not in NGINX_SPACE and text[i] not in ";{}":
                i += 2 if text[i] == "\\" else 1  # a backslash keeps the next character in the word
            tokens.append(_nginx_unescape(text[start:i]))
    return tokens


_NGINX_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def _nginx_unescape(word: str) -> str:
    """ngx_conf_read_token's copy: only these escapes are resolved; a backslash-dot stays."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "\\" and word[i + 1 : i + 2] in _NGINX_ESCAPES:
            out.append(_NGINX_ESCAPES[word[i + 1]])
            i += 2
            continue
        out.append(word[i])
        i += 1
    return "".join(out)


def nginx_directives(text: str) -> list[Directive]:
    found: list[Directive] = []
    where: list[str] = []
    words: list[str] = []
    for token in nginx_tokens(text):
        if token == "{":
            if not words:
                raise ParseError("nginx: block without a name")
            found.append(Directive(tuple(where), words[0], (*words[1:], "{")))
            where.append(" ".join(words))
            words = []
        elif token == "}":
            if words or not where:
                raise ParseError(f"nginx: unexpected }} after {words}")
            where.pop()
        elif token == ";":
            if not words:
                raise ParseError("nginx: empty directive")
            found.append(Directive(tuple(where), words[0], tuple(words[1:])))
            words = []
        else:
            words.append(token)
    if words or where:
        raise ParseError(f"nginx: unterminated directive {words} in {where}")
    return found


# --- gunicorn.conf.py ----------------------------------------------------------------------------


def python_assignments(text: str) -> list[Directive]:
    """Module-level `name = literal` statements; anything else is a statement we did not write."""
    found: list[Directive] = []
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            raise ParseError(f"python: unexpected statement {ast.dump(node)[:80]}")
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            raise ParseError("python: unexpected assignment target")
        found.append(Directive((), target.id, (repr(ast.literal_eval(node.value)),)))
    return found


def directives(path: str, text: str) -> list[Directive]:
    """The directive set of one rendered file, read the way its program reads it."""
    return list(_directives(path.endswith((".service", ".socket", ".path")), path.endswith(".py"), text))


@functools.lru_cache(maxsize=256)  # most files of a case are the same text as the last case's
def _directives(systemd: bool, python: bool, text: str) -> tuple[Directive, ...]:
    if systemd:
        return tuple(systemd_directives(text))
    if python:
        return tuple(python_assignments(text))
    return tuple(nginx_directives(text))
