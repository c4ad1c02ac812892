"""nginx syntax shared by the site and the shared files: a block, a pair of listens."""

from __future__ import annotations

INDENT = "    "

Version = tuple[int, int, int]


def listens(port: int, default: bool, options: str) -> list[str]:
    """IPv4 and IPv6 alike, with the same options."""
    suffix = options + (" default_server" if default else "")
    return [f"listen {port}{suffix};", f"listen [::]:{port}{suffix};"]


def block(opening: str, body: list[str]) -> list[str]:
    """`opening { ... }` with the body indented; blank lines stay blank."""
    return [f"{opening} {{", *((INDENT + line) if line else "" for line in body), "}"]
