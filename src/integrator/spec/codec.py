"""Between the declared tables and their forms: the TOML shape, the JSON a bundle carries, the
TOML text `new`/`init` write and the comment above it. Generic: it walks `declare.tables`.

Unknown tables and keys are errors everywhere: a typo must never fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from .declare import KIND_NAMES, Table, entry_table, tables
from .text import BARE_KEY, label, show

# --- TOML shape -> dataclasses ---------------------------------------------------------------


def from_shape(root: type, data: Mapping[str, Any], source: str) -> Any:
    """Build the root spec from a TOML-shaped mapping: kinds checked, defaults filled in.
    Values are checked afterwards (checks.check_values): this only types them."""
    known = tables(root)
    by_name = {t.name: t for t in known}
    for name, value in data.items():
        if name not in by_name:
            known_names = ", ".join(by_name)
            raise SpecError(f"{source}: unknown table [{label(name)}] (known: {known_names})")
        if not isinstance(value, dict):
            raise SpecError(f"{source}: [{name}] must be a table")
        _check_kinds(by_name[name], value, source)
    built = {t.name: _build(t, data.get(t.name, {}), source) for t in known}
    return root(**built)


def _check_kinds(table: Table, value: Mapping[str, Any], source: str) -> None:
    free = table.free
    if free and free.entry:  # [processes.NAME]: each entry a table of its own
        for name, val in value.items():
            if not isinstance(val, dict):
                raise SpecError(
                    f"{source}: [{table.name}] {label(name)} must be a table ([{table.name}.NAME])"
                )
            _check_kinds(entry_table(free, name), val, source)
        return
    if free:
        for key, val in value.items():
            if not isinstance(val, str):
                raise SpecError(f"{source}: [{table.name}] {label(key)} must be a string (quote numbers)")
        return
    keys = {k.name: k for k in table.keys}
    for key, val in value.items():
        declared = keys.get(key)
        if declared is None:
            raise SpecError(f"{source}: unknown key [{table.name}] {label(key)} (known: {', '.join(keys)})")
        expected = declared.kind
        # bool is an int subclass: `workers = true` must not pass as 1
        if not isinstance(val, expected) or (expected is int and isinstance(val, bool)):
            got = show(val) if isinstance(val, str) else repr(val)[:60]
            raise SpecError(f"{source}: [{table.name}] {key} must be {KIND_NAMES[expected]}, got {got}")
        if isinstance(val, list) and not all(isinstance(item, str) for item in val):
            raise SpecError(f"{source}: [{table.name}] {key} must be a list of strings")


def _build(table: Table, given: Mapping[str, Any], source: str) -> Any:
    free = table.free
    if free and free.entry:
        built = ((name, _build(entry_table(free, name), val, source)) for name, val in given.items())
        return table.cls(**{free.name: tuple(sorted(built))})
    if free:
        return table.cls(**{free.name: tuple(sorted(given.items()))})
    values: dict[str, Any] = {}
    for key in table.keys:
        if key.is_required and key.name not in given:
            raise SpecError(f"{source}: [{table.name}] {key.name} is required")
        value = given.get(key.name, key.default)
        values[key.name] = tuple(value) if key.kind is list else value
    return table.cls(**values)


# --- dataclasses -> JSON and back ------------------------------------------------------------


def to_dict(spec: Any) -> dict[str, Any]:
    """{table: {key: value}}: the TOML shape, with lists for tuples and null for an absent path."""
    data: dict[str, Any] = {}
    for table in tables(type(spec)):
        data[table.name] = _table_dict(table, getattr(spec, table.name))
    return data


def _table_dict(table: Table, values: Any) -> dict[str, Any]:
    free = table.free
    if free and free.entry:
        entries = getattr(values, free.name)
        return {name: _table_dict(entry_table(free, name), entry) for name, entry in entries}
    if free:
        return dict(getattr(values, free.name))
    return {
        k.name: list(getattr(values, k.name)) if k.kind is list else getattr(values, k.name)
        for k in table.keys
    }


# The JSON form integrators before the nested spec wrote (releases on hosts still carry it):
# flat key -> its table. `tls`, `limits`, `env` were objects, `secrets` the list of files.
LEGACY_FLAT: dict[str, str] = {
    **dict.fromkeys(("name", "version", "entry", "description"), "service"),
    **dict.fromkeys(("workers", "threads", "timeout", "graceful_timeout"), "server"),
    **dict.fromkeys(
        ("server_names", "default_server", "http_port", "https_port", "health_path", "max_body", "hsts"),
        "http",
    ),
    **dict.fromkeys(("network", "memory_deny_write_execute"), "security"),
    "keep_releases": "deploy",
    "tls": "tls",
    "env": "env",
    "secrets": "secrets",
    "limits": "limits",
}
LEGACY_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "tls": ("mode", "cert", "key"),
    "limits": ("memory_max", "cpu_quota", "tasks_max"),
}
# What spec.json must hold: every table and key of that form. A field declared later may be
# absent (a release deployed before it existed) and takes its default, validated like the rest.
LEGACY_KEYS: dict[str, tuple[str, ...]] = {
    "service": ("name", "version", "entry", "description"),
    "server": ("workers", "threads", "timeout", "graceful_timeout"),
    "http": ("server_names", "default_server", "http_port", "https_port", "health_path", "max_body", "hsts"),
    **LEGACY_TABLE_KEYS,
    "env": (),
    "secrets": ("files",),
    "security": ("network", "memory_deny_write_execute"),
    "deploy": ("keep_releases",),
}


def json_to_shape(root: type, data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """spec.json -> the TOML shape `parse_spec` validates. Every key it must have is named when
    missing, any other is refused: never a KeyError, never a silently ignored key."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: must be a JSON object")
    if "service" not in data and "name" in data:
        data = _flat_to_nested(data, source)
    known = tables(root)
    _expect_keys(data, [t.name for t in known], [t for t in LEGACY_KEYS], source, "")
    shape: dict[str, Any] = {}
    for table in known:
        if table.name not in data:
            continue
        given = data[table.name]
        if not isinstance(given, Mapping):
            raise SpecError(f"{source}: {table.name} must be an object")
        free = table.free
        if free and free.entry:  # each entry's keys are checked whole by `from_shape`
            shape[table.name] = {n: dict(e) if isinstance(e, Mapping) else e for n, e in given.items()}
            continue
        if free:
            shape[table.name] = dict(given)
            continue
        names = [k.name for k in table.keys]
        _expect_keys(given, names, LEGACY_KEYS.get(table.name, ()), source, f"{table.name}.")
        optional = {k.name for k in table.keys if k.optional}
        shape[table.name] = {k: v for k, v in given.items() if not (v is None and k in optional)}
    return shape


def _flat_to_nested(d: Mapping[str, Any], source: str) -> dict[str, Any]:
    _expect_keys(d, list(LEGACY_FLAT), list(LEGACY_FLAT), source, "")
    for key, kind in (("tls", dict), ("limits", dict), ("env", dict), ("secrets", list)):
        if not isinstance(d[key], kind):
            raise SpecError(f"{source}: {key} must be {'an object' if kind is dict else 'a list'}")
    for key, names in LEGACY_TABLE_KEYS.items():
        _expect_keys(d[key], list(names), names, source, f"{key}.")
    nested: dict[str, Any] = {name: {} for name in LEGACY_KEYS}
    for key, table_name in LEGACY_FLAT.items():
        if key in ("tls", "limits", "env"):
            nested[key] = dict(d[key])
        elif key == "secrets":
            nested[key] = {"files": list(d[key])}
        else:
            nested[table_name][key] = d[key]
    return nested


def _expect_keys(d: Mapping[str, Any], known: list[str], needed: Any, source: str, prefix: str) -> None:
    missing = [k for k in needed if k not in d]
    if missing:
        raise SpecError(f"{source}: {prefix}{missing[0]} is missing")
    unknown = sorted(str(k) for k in d if k not in known)
    if unknown:
        raise SpecError(f"{source}: unknown key {prefix}{show(unknown[0])}")


# --- TOML text and its comment ---------------------------------------------------------------


def dump_toml(spec: Any) -> str:
    """Every table with every key (defaults too, so the file shows them), absent paths left out."""
    lines: list[str] = []
    named = {t.name for t in tables(type(spec)) if t.free and t.free.entry}
    for table_name, values in to_dict(spec).items():
        if table_name in named:  # [processes.NAME] per entry
            for name, entry in values.items():
                lines += [f"[{table_name}.{_toml_key(name)}]", *_toml_lines(entry), ""]
            continue
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            continue
        lines += [f"[{table_name}]", *_toml_lines(values), ""]
    return "\n".join(lines)


def _toml_lines(values: Mapping[str, Any]) -> list[str]:
    return [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items() if value is not None]


def _toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else _toml_value(key)


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


COMMENT_INDENT = 14


def comment(root: type, env_prefix: str) -> str:
    """`# [table]   what it holds` for every table, from each table's declared comment."""
    lines: list[str] = []
    for table in tables(root):
        text = table.comment.replace("{NAME}", env_prefix).split("\n")
        lines.append(f"# [{table.name}]".ljust(COMMENT_INDENT) + text[0])
        lines += ["#".ljust(COMMENT_INDENT) + line for line in text[1:]]
    return "".join(line + "\n" for line in lines)
