"""TLS material: a self-signed certificate generated on the host, or provided files checked.

The key never leaves the host and is root-only (0600); nginx's master process reads it as root.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import CheckFailed
from ..layout import Layout
from ..spec import ServiceSpec
from .fs import Change, FileWriter
from .system import System

DAYS = 825  # the longest validity clients accept for a leaf certificate


@dataclass(frozen=True)
class TlsFiles:
    cert: PurePosixPath
    key: PurePosixPath
    verify_against: str | None  # what the health check trusts: None for self-signed


def tls_files(spec: ServiceSpec, layout: Layout) -> TlsFiles:
    if spec.tls.mode == "provided":
        assert spec.tls.cert and spec.tls.key  # validated by the spec
        return TlsFiles(PurePosixPath(spec.tls.cert), PurePosixPath(spec.tls.key), spec.tls.cert)
    return TlsFiles(layout.tls_cert, layout.tls_key, None)


def subject_alt_names(spec: ServiceSpec, hostname: str) -> str:
    names: list[str] = []
    for name in (*spec.effective_server_names, hostname, "localhost"):
        if name != "_" and name not in names:
            names.append(name)
    return ",".join(f"DNS:{n}" for n in names) + ",IP:127.0.0.1"


def ensure_tls(
    system: System, writer: FileWriter, spec: ServiceSpec, layout: Layout, hostname: str
) -> list[Change]:
    """Generate the self-signed pair once (kept across deploys), or check the provided pair."""
    files = tls_files(spec, layout)
    if spec.tls.mode == "provided":
        check_pair(system, files.cert, files.key)
        return []
    if (
        system.path(files.cert).is_file()
        and system.path(files.key).is_file()
        and _pair_matches(system, files)
    ):
        return []
    if writer.dry_run:
        return [Change(files.cert, "create"), Change(files.key, "create")]
    cert, key = generate_self_signed(system, spec, hostname)
    return [writer.put(files.key, key, 0o600, secret=True), writer.put(files.cert, cert, 0o644)]


def generate_self_signed(system: System, spec: ServiceSpec, hostname: str) -> tuple[bytes, bytes]:
    """`openssl req -x509` with SANs = server names + host name; returns (cert, key) bytes."""
    with tempfile.TemporaryDirectory(prefix="integrator-tls-") as tmp:
        key, cert = Path(tmp) / "key.pem", Path(tmp) / "cert.pem"
        system.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-days", str(DAYS), "-subj", f"/CN={spec.effective_server_names[0]}",
                "-addext", f"subjectAltName={subject_alt_names(spec, hostname)}",
                "-keyout", str(key), "-out", str(cert),
            ]
        )  # fmt: skip
        return cert.read_bytes(), key.read_bytes()


def check_pair(system: System, cert: PurePosixPath, key: PurePosixPath) -> None:
    """Provided files must exist and belong together (same public key)."""
    for path in (cert, key):
        if not system.path(path).is_file():
            raise CheckFailed(f"[tls] mode = 'provided' but {path} does not exist on the host")
    if not _pair_matches(system, TlsFiles(cert, key, None)):
        raise CheckFailed(f"{cert} and {key} do not match (different public keys)")


def _pair_matches(system: System, files: TlsFiles) -> bool:
    cert_pub = system.run(
        ["openssl", "x509", "-noout", "-pubkey", "-in", str(system.path(files.cert))], check=False
    )
    key_pub = system.run(["openssl", "pkey", "-pubout", "-in", str(system.path(files.key))], check=False)
    return cert_pub.ok and key_pub.ok and cert_pub.stdout.strip() == key_pub.stdout.strip()
