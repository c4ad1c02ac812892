"""Sign and check manifest.json with `ssh-keygen -Y` (HOST-SIDE: the check runs on hosts).

The manifest carries the sha256 of every member, so one signature over its exact bytes
covers the whole bundle. SSH signatures need no new key infrastructure: the same ed25519
keys people already have, and ssh-keygen is on every RHEL (openssh-clients) and Debian
(openssh-client) host. OpenSSH >= 8.1 is needed (RHEL 8's 8.0 is too old for `-Y`).

allowed_signers file: one line per trusted key, principal `integrator`, e.g.
    integrator ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... release-key
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import BundleError, EnvironmentProblem
from .venv import last_line

NAMESPACE = "integrator-bundle"  # a signature made for anything else (git, files) does not verify here
PRINCIPAL = "integrator"
_TIMEOUT = 120


def _ssh_keygen() -> str:
    path = shutil.which("ssh-keygen")
    if path is None:
        raise EnvironmentProblem(
            "ssh-keygen not found: install openssh-clients (RHEL) or openssh-client (Debian) "
            "to sign or check bundles"
        )
    return path


def sign_command(key: Path) -> list[str]:
    return [_ssh_keygen(), "-Y", "sign", "-f", str(key), "-n", NAMESPACE]


def verify_command(allowed_signers: Path, signature: Path) -> list[str]:
    keygen = _ssh_keygen()
    return [
        keygen,
        "-Y",
        "verify",
        "-f",
        str(allowed_signers),
        "-I",
        PRINCIPAL,
        "-n",
        NAMESPACE,
        "-s",
        str(signature),
    ]


def sign_manifest(manifest: bytes, key: Path) -> bytes:
    """The detached SSH signature of `manifest` (read from stdin, so no temp file holds it)."""
    if not key.is_file():
        raise BundleError(f"{key}: no such signing key")
    proc = subprocess.run(
        sign_command(key), input=manifest, capture_output=True, timeout=_TIMEOUT, check=False
    )
    if proc.returncode != 0 or not proc.stdout.startswith(b"-----BEGIN SSH SIGNATURE-----"):
        why = last_line(proc.stderr.decode(errors="replace"))
        raise BundleError(f"signing with {key} failed: {why}")
    return proc.stdout


def verify_manifest(manifest: bytes, signature: bytes, allowed_signers: Path, source: str) -> str:
    """Check `signature` over `manifest` against `allowed_signers`; return ssh-keygen's 'Good ...' line."""
    if not allowed_signers.is_file():
        raise BundleError(f"{allowed_signers}: no such allowed-signers file")
    with tempfile.TemporaryDirectory(prefix="integrator-sig-") as tmp:
        sig_path = Path(tmp) / "manifest.sig"
        fd = os.open(sig_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(signature)
        proc = subprocess.run(
            verify_command(allowed_signers, sig_path),
            input=manifest,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        if "unknown option -- Y" in text or "illegal option -- Y" in text:
            raise EnvironmentProblem("ssh-keygen here is too old for signatures (-Y needs OpenSSH >= 8.1)")
        raise BundleError(
            f"{source}: signature is not valid for principal {PRINCIPAL!r} in {allowed_signers}: "
            + last_line(text)
        )
    return last_line(text)
