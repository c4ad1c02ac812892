"""docs/spec.md, written from the declarations (model.py): every table and key of service.toml
with its type, default, bounds or choices and help, so the help declared once reaches users.

`python -m integrator.spec.reference docs/spec.md` rewrites the file; tests/test_spec_reference.py
fails when the committed file is not what the declarations say.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .declare import Key, entry_table, tables
from .model import ServiceSpec

HEADER = """\
# service.toml, every key

Written from the declarations in `src/integrator/spec/model.py` by
`python -m integrator.spec.reference docs/spec.md`; do not edit by hand
(`tests/test_spec_reference.py` checks it is up to date). Unknown tables or keys, wrong types
and values out of bounds are errors naming the key. Every text is checked whole: no control
characters (see "Text fields" in [security.md](security.md)). An example file is in the README.
"""

_KIND = {str: "string", int: "integer", bool: "true/false", list: "list of strings"}


def reference(root: type = ServiceSpec) -> str:
    """The markdown, table by table in declaration order."""
    out = [HEADER]
    for table in tables(root):
        out += [f"## [{table.name}]", "", " ".join(table.comment.replace("{NAME}", "NAME").split()), ""]
        keys = table.keys
        if table.free is not None and table.free.entry is not None:  # [processes.NAME]
            out += [f"Each entry is a table `[{table.name}.NAME]`: {_cell(table.free.help)}.", ""]
            keys = entry_table(table.free, "NAME").keys
        elif table.free is not None:
            out += [f"Each entry is `KEY = value`: {_cell(table.free.help)}.", ""]
            continue
        out += ["| key | type | default | allowed | what it is |", "|---|---|---|---|---|"]
        out += [
            f"| `{k.name}` | {_type(k)} | {_default(k)} | {_allowed(k)} | {_cell(k.help)} |" for k in keys
        ]
    return "\n".join(out).rstrip("\n") + "\n"


def _type(key: Key) -> str:
    kind = _KIND.get(key.kind, key.kind.__name__)
    return f"{kind}, optional" if key.optional else kind


def _default(key: Key) -> str:
    if key.is_required:
        return "**required**"
    if key.default is None:
        return "(none)"
    return f"`{_toml(key.default)}`"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _allowed(key: Key) -> str:
    if key.choices:
        return ", ".join(f"`{_toml(c)}`" for c in key.choices)
    if key.low is not None or key.high is not None:
        return f"{key.low if key.low is not None else '…'} to {key.high if key.high is not None else '…'}"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: list[str]) -> int:
    """Write the reference to the path given (or print it)."""
    text = reference()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
