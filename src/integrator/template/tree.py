"""Render the Flask service template in memory, then write it into place atomically.

Rendering is a pure function of (name, version): the result is a mapping of relative paths
to bytes, so tests and `new` can inspect it before anything touches the disk. Writing goes to
a hidden directory beside the destination and is renamed into place in one step, so a failed
`new` or `clone` leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ..errors import TemplateError
from ..layout import Layout
from ..project.metadata import parse_toml
from ..spec import ServiceSpec, dump_spec_toml, parse_spec, spec_comment

TEMPLATE_DIR = Path(__file__).resolve().parent / "files"
PACKAGE_PLACEHOLDER = "__name__"
# Dotfiles are shipped without their dot: package-data globs (and some tools) skip hidden files.
DOTFILES = {"gitignore": ".gitignore"}
# Only these are substituted; any other `{{word}}` in a template file is a template bug.
PLACEHOLDER_RE = re.compile(r"\{\{([A-Za-z_]+)\}\}")
DEFAULT_VERSION = "0.1.0"

Tree = dict[PurePosixPath, bytes]


def title_of(name: str) -> str:
    """`order_tracker` -> `Order Tracker`: how people write the service's name in prose."""
    return " ".join(word[:1].upper() + word[1:] for word in name.split("_") if word)


def env_prefix_of(name: str) -> str:
    """`order_tracker` -> `ORDER_TRACKER`: the app reads its settings from `ORDER_TRACKER_*`."""
    return name.upper()


def placeholders(name: str, version: str) -> dict[str, str]:
    """Every value a template file may use, and nothing else."""
    return {"name": name, "Name": title_of(name), "NAME": env_prefix_of(name), "version": version}


def new_spec(name: str, version: str = DEFAULT_VERSION, *, source: str = "new") -> ServiceSpec:
    """The spec of a freshly generated service; a bad name fails here, before anything is written."""
    data = {
        "service": {
            "name": name,
            "version": version,
            "entry": f"{name}:create_app()",
            "description": f"{title_of(name)}: a Flask service",
        }
    }
    return parse_spec(data, source=source)


def spec_header(spec: ServiceSpec) -> str:
    """Comments for service.toml: `dump_spec_toml` writes none, and people read this file first.

    The list of tables is `spec_comment`, made from the spec's declarations (spec/model.py).
    """
    return (
        "# service.toml: how integrator runs this service. Checked strictly: an unknown table or key,\n"
        "# a wrong type or a bad value is an error naming the field, never a silent default.\n"
        "#\n"
        + spec_comment(env_prefix_of(spec.name))
        + "#\n# Every value below is a default; change what you need. See `integrator --help`.\n\n"
    )


def service_toml(spec: ServiceSpec) -> str:
    """The full text of service.toml: the commented header, then the spec as TOML."""
    return spec_header(spec) + dump_spec_toml(spec)


def substitute(text: str, values: Mapping[str, str], *, where: str = "template") -> str:
    """Replace `{{key}}` markers; an unknown key is a bug in the template, so it raises."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{where}: unknown placeholder {{{{{key}}}}} (known: {', '.join(values)})")
        return values[key]

    return PLACEHOLDER_RE.sub(one, text)


def _template_files(root: Path) -> list[Path]:
    """The template's files, sorted; caches left by editors or test runs are not part of it."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _output_path(rel: PurePosixPath, name: str) -> PurePosixPath:
    parts = [name if part == PACKAGE_PLACEHOLDER else DOTFILES.get(part, part) for part in rel.parts]
    return PurePosixPath(*parts)


def render_tree(name: str, version: str = DEFAULT_VERSION) -> Tree:
    """Render the whole service in memory: relative path -> content. Reads only the template.

    `service.toml` is not a template file: it is made from a validated ServiceSpec, so it is
    always something `load_spec` accepts.
    """
    spec = new_spec(name, version)
    values = placeholders(name, version)
    tree: Tree = {}
    for path in _template_files(TEMPLATE_DIR):
        rel = PurePosixPath(path.relative_to(TEMPLATE_DIR).as_posix())
        text = substitute(path.read_text(encoding="utf-8"), values, where=str(rel))
        tree[_output_path(rel, name)] = text.encode("utf-8")
    tree[PurePosixPath("service.toml")] = service_toml(spec).encode("utf-8")
    return dict(sorted(tree.items()))


# --- writing ---------------------------------------------------------------------------


def check_destination(dest: Path) -> None:
    """Refuse to write over anything: an existing non-empty directory or a file is an error."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise TemplateError(f"{dest} already exists and is not a directory; choose another path")
    if dest.is_dir() and any(dest.iterdir()):
        raise TemplateError(f"{dest} already exists and is not empty; choose another directory")
    if not dest.parent.is_dir():
        raise TemplateError(f"{dest.parent} does not exist; create it first")


def write_tree(
    files: Mapping[PurePosixPath, bytes], dest: Path, modes: Mapping[PurePosixPath, int] | None = None
) -> None:
    """Write `files` as a new directory `dest`, all or nothing.

    Files go into a hidden sibling directory first (same file system, so the final rename is
    atomic); only when every file is written is it renamed to `dest`. Any failure removes the
    temporary directory, so `dest` either appears complete or not at all. `modes` keeps
    permission bits (executable scripts) when cloning.
    """
    check_destination(dest)
    tmp = dest.parent / f".{dest.name}.integrator-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for rel, content in files.items():
            _check_relative(rel)
            target = tmp.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            if modes and rel in modes:
                os.chmod(target, modes[rel] & 0o7777)
        try:
            os.replace(tmp, dest)  # also replaces an empty directory, atomically
        except OSError as exc:
            raise TemplateError(f"could not create {dest}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_relative(rel: PurePosixPath) -> None:
    """A path in a tree must stay inside it: no absolute paths, no `..` (a cloned tree is input)."""
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise TemplateError(f"refusing to write {rel}: not a relative path inside the service")


def write_new_file(path: Path, text: str) -> None:
    """Create `path` with `text`, complete or not at all, and never over an existing file.

    The text goes to a temporary file first; a hard link then creates `path` only if it does not
    exist yet (unlike a rename, which would replace a file made in the meantime).
    """
    tmp = path.with_name(f".{path.name}.integrator-{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(tmp, path)
    except FileExistsError:
        raise TemplateError(f"{path} already exists; not overwriting it") from None
    finally:
        tmp.unlink(missing_ok=True)


def parse_service_toml(text: str, *, source: str) -> ServiceSpec:
    """Validate service.toml text before it is written (load_spec reads files; this reads memory)."""
    return parse_spec(parse_toml(text, source=source), source=source)


def host_names(spec: ServiceSpec) -> str:
    """What the name turns into on a host, so the user sees that two services cannot collide."""
    lay = Layout.for_spec(spec)
    return (
        f"units {lay.slot('a').service_unit} and {lay.slot('b').service_unit}, sockets in {lay.runtime_dir}, "
        f"nginx site {lay.nginx_site}, "
        f"user {lay.user}, releases {lay.releases}"
    )
