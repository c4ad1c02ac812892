"""Read a service directory into memory and rename it, for `integrator clone`.

Renaming is token replacement, not free-text replacement: the old name is replaced only where
it stands alone as an identifier (`shop`, `shop.views`, `"shop"`, `shop:create_app()`), in its
title form (`Shop`, `Order Tracker`) and as the environment prefix (`SHOP`, `SHOP_GREETING`).
`shopping`, `shop_utils` or `myshop` are different identifiers and stay as they are.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import TemplateError
from ..project.files import VCS_DIRS, source_files
from .tree import Tree, env_prefix_of, title_of

# Copied byte for byte: its history and config describe the original repository.
VERBATIM_DIRS = VCS_DIRS

_IDENT = "A-Za-z0-9_"


@dataclass
class SourceTree:
    """A service directory as data: contents, permission bits, and what was left out and why."""

    files: Tree = field(default_factory=dict)
    modes: dict[PurePosixPath, int] = field(default_factory=dict)
    verbatim: set[PurePosixPath] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)  # symlinks: not copied, and said so
    left_out: set[str] = field(default_factory=set)  # names of build products and caches met


def read_tree(root: Path) -> SourceTree:
    """The project's source files (project/files.py: never caches, environments, build output or
    what a .gitignore names); symlinks are reported, not followed."""
    found = source_files(root, vcs=True)
    tree = SourceTree(left_out=set(found.left_out))
    tree.skipped = [f"{rel} (symlink)" for rel in found.symlinks]
    for rel, why in found.files.items():
        if why == ".gitignore":
            tree.left_out.add(f"{rel} (.gitignore)")
            continue
        path = root / rel
        tree.files[rel] = path.read_bytes()
        tree.modes[rel] = stat.S_IMODE(path.stat().st_mode)
        if rel.parts[0] in VERBATIM_DIRS:
            tree.verbatim.add(rel)
    return tree


@dataclass(frozen=True)
class Renamer:
    """Replaces the old name's three forms with the new name's, in one pass (no re-replacement)."""

    old: str
    new: str

    @property
    def pattern(self) -> re.Pattern[str]:
        forms = sorted({self.old, title_of(self.old)}, key=len, reverse=True)
        words = "|".join(re.escape(f) for f in forms)
        # the ENV form may be followed by `_`: SHOP_GREETING is the prefix SHOP plus a setting
        env = re.escape(env_prefix_of(self.old))
        return re.compile(
            rf"(?<![{_IDENT}])(?:(?P<word>{words})(?![{_IDENT}])|(?P<env>{env})(?![A-Za-z0-9]))"
        )

    def _replacement(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if match.group("env") is not None and found == env_prefix_of(self.old):
            return env_prefix_of(self.new)
        return self.new if found == self.old else title_of(self.new)

    def text(self, text: str) -> tuple[str, int]:
        """The renamed text and how many replacements were made."""
        return self.pattern.subn(self._replacement, text)

    def path(self, rel: PurePosixPath) -> PurePosixPath:
        """`src/shop/views.py` -> `src/shop2/views.py`: each path component renamed as a token."""
        return PurePosixPath(*(self.text(part)[0] for part in rel.parts))


def _as_text(content: bytes) -> str | None:
    """Text files are renamed; binary ones (images, databases) are copied unchanged."""
    if b"\0" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


@dataclass
class RenamedTree:
    files: Tree
    modes: dict[PurePosixPath, int]
    changed: list[PurePosixPath]  # new paths whose content or path changed
    replacements: int


def rename_tree(tree: SourceTree, renamer: Renamer) -> RenamedTree:
    """Apply `renamer` to every path and text file, except the verbatim ones (.git)."""
    files: Tree = {}
    modes: dict[PurePosixPath, int] = {}
    changed: list[PurePosixPath] = []
    total = 0
    for rel, content in tree.files.items():
        if rel in tree.verbatim:
            new_rel, new_content = rel, content
        else:
            new_rel = renamer.path(rel)
            text = _as_text(content)
            count = 0
            if text is not None:
                new_text, count = renamer.text(text)
                new_content = new_text.encode("utf-8")
            else:
                new_content = content
            total += count
            if count or new_rel != rel:
                changed.append(new_rel)
        if new_rel in files:
            raise TemplateError(f"renaming would make two files called {new_rel}; rename one first")
        files[new_rel] = new_content
        modes[new_rel] = tree.modes[rel]
    return RenamedTree(files=files, modes=modes, changed=sorted(changed), replacements=total)
