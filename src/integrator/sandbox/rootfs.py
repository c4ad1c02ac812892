"""The base root filesystem every host boots from (read-only overlay lower layer).

Built once with mmdebstrap (20-45 s), cached as a zstd tarball (~100 MB) under
/var/cache/integrator, and extracted into base-BUILD/. The tarball's key file records the cache
key (a hash of the suite, the package list and the customize steps: the base is rebuilt exactly
when one of those changes) and the BUILD id. Every build gets a new directory, so hosts still
running on an older one keep it until they are destroyed; unused bases are then pruned.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from .mirrors import apt_lines, find_mirrors
from .paths import CACHE_DIR, host_names, host_paths, locked, read_text, write_atomic
from .procs import run

Progress = Callable[[str], None]

SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "nginx",
    "python3",
    "python3-venv",
    "python3-pip",
    "openssl",
    "curl",
    "ca-certificates",
    "iproute2",
    "procps",
    "openssh-server",
    "less",
    "sudo",
)
# Bump when customize() changes what it writes: the key changes and the base is rebuilt.
CUSTOMIZE_VERSION = 1
TAR_OPTS = ("--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls")

# sshd refuses to start without host keys; they are removed from the base so that no two hosts
# share one, and generated on each host's first boot before sshd's own config test runs.
SSH_KEYGEN_DROPIN = """\
# integrator sandbox: host keys are made per host at first boot, not baked into the base
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""
HOSTS = "127.0.0.1 localhost\n127.0.1.1 {name}\n::1 localhost ip6-localhost ip6-loopback\n"


def cache_key(
    suite: str = SUITE, packages: Sequence[str] = PACKAGES, customize_version: int = CUSTOMIZE_VERSION
) -> str:
    """Hash of what determines the base's content (not the mirror: any mirror gives the same suite)."""
    spec = {"suite": suite, "packages": sorted(set(packages)), "customize": customize_version}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def tarball_path() -> Path:
    return CACHE_DIR / f"{SUITE}-sandbox.tar.zst"


def base_path(build_id: str) -> Path:
    return CACHE_DIR / f"base-{build_id}"


def parse_keyfile(text: str | None) -> tuple[str | None, str | None]:
    """(cache key, build id) from a key file's text; (None, None) if absent or malformed."""
    lines = (text or "").split()
    return (lines[0], lines[1]) if len(lines) == 2 else (None, None)


def ensure_base(*, force: bool = False, progress: Progress | None = None) -> Path:
    """The extracted base for the current key: built or extracted only when needed; safe to race."""
    say = progress or (lambda _msg: None)
    key = cache_key()
    tarball = tarball_path()
    keyfile = Path(f"{tarball}.key")
    with locked(CACHE_DIR / ".lock"):
        _remove_stale_work()
        recorded, build_id = parse_keyfile(read_text(keyfile))
        if force or recorded != key or build_id is None or not tarball.is_file():
            build_id = _build(tarball, keyfile, key, say)
        elif not base_path(build_id).is_dir():
            _extract(tarball, base_path(build_id), say)
        _prune(keep=base_path(build_id))
    return base_path(build_id)


def _build(tarball: Path, keyfile: Path, key: str, say: Progress) -> str:
    """mmdebstrap + customize, write the tarball and its key file; the tree becomes the new base."""
    build_id = f"{key[:12]}-{int(time.time())}"
    work = CACHE_DIR / f"build-{os.getpid()}"
    debian, security = find_mirrors()
    say(f"building the {SUITE} base with mmdebstrap from {debian} (about 30 s, once)")
    started = time.monotonic()
    run(
        [
            "mmdebstrap",
            "--variant=apt",
            "--components=main",
            f"--include={','.join(PACKAGES)}",
            "--format=directory",
            SUITE,
            str(work),
            *apt_lines(SUITE, debian, security),
        ],
        timeout=1800,
        what="mmdebstrap",
    )
    customize(work)
    say(f"base built in {time.monotonic() - started:.1f} s; packing {tarball.name}")
    tmp = tarball.with_name(f".{tarball.name}.tmp")
    run(
        ["tar", *TAR_OPTS, "-I", "zstd -T0 -3", "-cpf", str(tmp), "-C", str(work), "."],
        timeout=600,
        what="packing the base",
    )
    os.replace(tmp, tarball)
    write_atomic(keyfile, f"{key}\n{build_id}\n")
    os.replace(work, base_path(build_id))
    return build_id


def _extract(tarball: Path, base: Path, say: Progress) -> None:
    say(f"extracting {tarball.name} into {base}")
    new = base.with_name(base.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    run(
        ["tar", *TAR_OPTS, "-I", "zstd", "-xpf", str(tarball), "-C", str(new)],
        timeout=600,
        what="extracting the base",
    )
    os.replace(new, base)


def customize(root: Path) -> None:
    """Make the bootstrapped tree a good template for many hosts (bump CUSTOMIZE_VERSION on change)."""
    (root / "etc/hostname").write_text("sandbox\n")
    (root / "etc/hosts").write_text(HOSTS.format(name="sandbox"))
    # empty machine-id: systemd makes a new one on each host's first boot
    (root / "etc/machine-id").write_text("")
    _remove(root / "var/lib/dbus/machine-id")
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        _mask(root, unit)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    dropin = root / "etc/systemd/system/ssh.service.d/integrator-keygen.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(SSH_KEYGEN_DROPIN)


def _mask(root: Path, unit: str) -> None:
    link = root / "etc/systemd/system" / unit
    _remove(link)
    link.symlink_to("/dev/null")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()


def _bases_in_use() -> set[Path]:
    used = set()
    for name in host_names():
        recorded = read_text(host_paths(name).base)
        if recorded:
            used.add(Path(recorded))
    return used


def _prune(keep: Path) -> None:
    """Delete bases no host uses any more (the tarball stays: it is the cache)."""
    in_use = _bases_in_use()
    for old in CACHE_DIR.glob("base-*"):
        if old != keep and old not in in_use and old.is_dir():
            shutil.rmtree(old)


def _remove_stale_work() -> None:
    """Half-done builds/extractions of a crashed run (we hold the lock, so none is live)."""
    for stale in [*CACHE_DIR.glob("build-*"), *CACHE_DIR.glob("base-*.new")]:
        shutil.rmtree(stale, ignore_errors=True)
