"""Debian mirrors for the base: taken from this machine's own apt sources.

The machine already knows which mirror it may reach (a local proxy, a snapshot, a company
mirror), so the base is built from the same one instead of a hard-coded deb.debian.org.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import EnvironmentProblem

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
ONE_LINE = re.compile(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)")
ENV_MIRROR = "INTEGRATOR_SANDBOX_MIRROR"
ENV_SECURITY = "INTEGRATOR_SANDBOX_SECURITY_MIRROR"


def parse_sources(text: str) -> list[str]:
    """Repository URIs in a sources file, deb822 (`URIs:` fields) or one-line (`deb URI ...`) format."""
    uris: list[str] = []
    in_uris = False
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if not line.strip():  # a blank line ends the deb822 stanza
            in_uris = False
            continue
        if in_uris and line[0] in " \t":  # a deb822 field continued on the next line
            uris += line.split()
            continue
        field, sep, value = line.partition(":")
        in_uris = bool(sep) and field.strip().lower() == "uris"
        if in_uris:
            uris += value.split()
            continue
        match = ONE_LINE.match(line.strip())
        if match:
            uris.append(match.group(1))
    return uris


def pick(uris: Iterable[str], suffix: str) -> str | None:
    """The first URI whose path ends with `suffix` (/debian or /debian-security)."""
    for uri in uris:
        if uri.rstrip("/").endswith(suffix):
            return uri.rstrip("/")
    return None


def source_files(locations: Iterable[Path] = APT_SOURCES) -> list[Path]:
    files: list[Path] = []
    for loc in locations:
        if loc.is_dir():
            files += sorted(p for p in loc.iterdir() if p.suffix in (".list", ".sources"))
        elif loc.is_file():
            files.append(loc)
    return files


def find_mirrors(locations: Iterable[Path] = APT_SOURCES) -> tuple[str, str]:
    """(debian, debian-security) mirror URIs; the environment may override either."""
    uris: list[str] = []
    for path in source_files(locations):
        uris += parse_sources(path.read_text(errors="replace"))
    debian = os.environ.get(ENV_MIRROR) or pick(uris, "/debian")
    security = os.environ.get(ENV_SECURITY) or pick(uris, "/debian-security")
    if not debian or not security:
        missing = "a .../debian mirror" if not debian else "a .../debian-security mirror"
        raise EnvironmentProblem(
            f"no {missing} in /etc/apt/sources.list or /etc/apt/sources.list.d/*; "
            f"set {ENV_MIRROR} and {ENV_SECURITY} to Debian mirror URLs"
        )
    return debian, security


def apt_lines(suite: str, debian: str, security: str) -> list[str]:
    """One-line sources for mmdebstrap: the suite, its updates and its security updates."""
    return [
        f"deb {debian} {suite} main",
        f"deb {debian} {suite}-updates main",
        f"deb {security} {suite}-security main",
    ]
