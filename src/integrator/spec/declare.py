"""How a spec field is declared, once: its default, type and help, and the checks derived from it.

A table is a frozen dataclass; each field is declared with `setting` (a default) or `required`,
and the root `ServiceSpec` names each table with `table`. A table of named tables
(`[processes.NAME]`) is a free table whose entries are themselves declared tables (`entries`).
Everything else (the schema and its
unknown-key errors, defaults, parsing, JSON, the TOML writer, the template's comment, the text
and range checks) walks these declarations (`tables`, `keys`), so adding a field is one line.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional

# The TOML/JSON kind of every annotation a field may have (annotations stay strings here:
# `from __future__ import annotations`, and `str | None` cannot be evaluated on Python 3.9).
KINDS: dict[str, type] = {"str": str, "int": int, "bool": bool, "str | None": str, "tuple[str, ...]": list}
# A free-form table (`[env]`): its TOML keys are the entries, each a string.
FREE = "tuple[tuple[str, str], ...]"
KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def setting(
    default: Any,
    help: str,
    *,
    low: Optional[int] = None,
    high: Optional[int] = None,
    choices: tuple[str, ...] = (),
) -> Any:
    """A field with a default. `low`/`high` bound an integer, `choices` list a string's values."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices})


def required(help: str) -> Any:
    """A field the spec must give (no default)."""
    return field(metadata={"help": help, "low": None, "high": None, "choices": ()})


def entries(cls: type, help: str) -> Any:
    """The entries of a table of named tables (`[processes.NAME]`), each a `cls` whose fields are
    declared like a table's; annotated `tuple[tuple[str, cls], ...]` (sorted by name)."""
    meta = {"help": help, "low": None, "high": None, "choices": (), "entry": cls}
    return field(default=(), metadata=meta)


def table(cls: type, comment: str, *, needed: bool = False) -> Any:
    """A TOML table on the root spec. `comment` is its entry in the template's service.toml
    header (lines as written; `{NAME}` becomes the service's environment prefix)."""
    meta = {"cls": cls, "comment": comment}
    return field(metadata=meta) if needed else field(default_factory=cls, metadata=meta)


@dataclass(frozen=True)
class Key:
    """One declared key of one table, as the generic code reads it."""

    table: str
    name: str
    kind: type
    optional: bool  # may be None (absent from TOML, null in JSON)
    free: bool  # the table's entries themselves (`[env]`, `[processes]`)
    default: Any  # MISSING when required
    help: str
    low: Optional[int]
    high: Optional[int]
    choices: tuple[str, ...]
    entry: Optional[type] = None  # a table of named tables: the class of each entry

    @property
    def label(self) -> str:
        return f"[{self.table}]" if self.free else f"[{self.table}] {self.name}"

    @property
    def is_required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class Table:
    name: str
    cls: type
    comment: str
    keys: tuple[Key, ...]

    @property
    def free(self) -> Optional[Key]:
        return next((k for k in self.keys if k.free), None)


def entry_table(key: Key, name: str) -> Table:
    """Entry `name` of a table of named tables, as a table of its own: `[processes.NAME]`."""
    assert key.entry is not None, key.label
    label = f"{key.table}.{name}"
    return Table(label, key.entry, "", tuple(_key(label, k) for k in fields(key.entry)))


def _key(table_name: str, f: Any) -> Key:
    annotation = str(f.type)
    entry = f.metadata.get("entry")
    if entry is not None:
        if annotation != f"tuple[tuple[str, {entry.__name__}], ...]":
            raise TypeError(f"[{table_name}] {f.name}: entries of {entry.__name__} need that annotation")
        return Key(
            table_name, f.name, dict, False, True, f.default, f.metadata["help"], None, None, (), entry
        )
    if annotation != FREE and annotation not in KINDS:
        raise TypeError(f"[{table_name}] {f.name}: no TOML kind for {annotation!r} (see declare.KINDS)")
    if not f.metadata.get("help"):
        raise TypeError(f"[{table_name}] {f.name}: declare it with setting() or required(), with help")
    return Key(
        table=table_name,
        name=f.name,
        kind=str if annotation == FREE else KINDS[annotation],
        optional=annotation == "str | None",
        free=annotation == FREE,
        default=f.default,
        help=f.metadata["help"],
        low=f.metadata["low"],
        high=f.metadata["high"],
        choices=f.metadata["choices"],
    )


_TABLES: dict[type, tuple[Table, ...]] = {}


def tables(root: type) -> tuple[Table, ...]:
    """The root's tables in declaration order (cached: declarations do not change)."""
    if root not in _TABLES:
        _TABLES[root] = tuple(
            Table(
                f.name,
                f.metadata["cls"],
                f.metadata["comment"],
                tuple(_key(f.name, k) for k in fields(f.metadata["cls"])),
            )
            for f in fields(root)
        )
    return _TABLES[root]
