"""The host's local CA for `[tls] mode = "local-ca"`: kept under Layout.local_ca_dir, made by the
first deploy that needs it, or placed there by the operator beforehand (one CA for a fleet).

The CA key signs certificates that clients trust, so it is used only when root owns it and no
one else can read or replace it (no symlinks, no group/other bits). Its location is fixed on the
host, never named by a spec: a bundle's author must not pick the key a host signs with.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import CheckFailed
from ..layout import Layout
from .fs import Change, FileWriter
from .system import System

CA_DAYS = 3650  # the anchor clients install once; the leaves it signs live DAYS (tls.py)
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # P-256: Mozilla's curves


def openssl_config(common_name: str, extensions: Sequence[str]) -> str:
    """A complete config for `openssl req`/`x509 -extfile` (the host's openssl.cnf is not read),
    extensions in section [ext]. Names here are validated server/host names."""
    return "\n".join(
        ["[req]", "distinguished_name = dn", "prompt = no", "[dn]", f"CN = {common_name}", "[ext]",
         *extensions, ""]
    )  # fmt: skip


def leaf_extensions(names: Sequence[str]) -> list[str]:
    """A server-auth leaf: what strict verifiers (browsers, cryptography's) ask of one."""
    san = ",".join(f"DNS:{n}" for n in names) + ",IP:127.0.0.1"
    return [
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature",
        "extendedKeyUsage = serverAuth",
        f"subjectAltName = {san}",
        "subjectKeyIdentifier = hash",
    ]


CA_EXTENSIONS = [
    "basicConstraints = critical, CA:TRUE, pathlen:0",
    "keyUsage = critical, keyCertSign, cRLSign",
    "subjectKeyIdentifier = hash",
]


def ca_present(system: System, layout: Layout) -> tuple[bool, bool]:
    """Whether the local CA's certificate and key exist (a symlink counts: it is refused later)."""
    cert, key = system.path(layout.local_ca_cert), system.path(layout.local_ca_key)
    return cert.exists() or cert.is_symlink(), key.exists() or key.is_symlink()


def make_ca(system: System, writer: FileWriter, layout: Layout, hostname: str) -> list[Change]:
    """A new CA (the plan found none): its key root-only, its certificate world-readable."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", hostname)[:40]  # only name characters reach the config
    cert_pem, key_pem = _make_ca(system, f"integrator local CA {host}")
    return [
        writer.ensure_dir(layout.local_ca_dir, 0o755),
        writer.put(layout.local_ca_key, key_pem, 0o600, secret=True),
        writer.put(layout.local_ca_cert, cert_pem, 0o644),
    ]


def check_ca_files(system: System, layout: Layout) -> None:
    """Root owns the CA directory and files, nobody else may replace them, nobody else may read
    the key; the certificate is a CA's and matches the key."""
    me = os.geteuid()  # root on a host; the test's own user in a temporary root
    for path, forbidden in (
        (layout.local_ca_dir, 0o022),
        (layout.local_ca_cert, 0o022),
        (layout.local_ca_key, 0o077),
    ):
        st = os.lstat(system.path(path))
        if stat.S_ISLNK(st.st_mode):
            raise CheckFailed(f"{path} is a symlink: the local CA must be plain root-owned files")
        if st.st_uid != me or stat.S_IMODE(st.st_mode) & forbidden:
            mode = "0700 or 0755" if path == layout.local_ca_dir else "0600" if forbidden == 0o077 else "0644"
            raise CheckFailed(
                f"{path} is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}: the local "
                f"CA is used only when root owns it and no one else can change it (chown root: and "
                f"chmod {mode} it, or remove {layout.local_ca_dir} to let the deploy make a new CA)"
            )
    text = system.run(["openssl", "x509", "-noout", "-text", "-in", str(system.path(layout.local_ca_cert))],
                      check=False)  # fmt: skip
    if not text.ok or "CA:TRUE" not in text.stdout:
        raise CheckFailed(f"{layout.local_ca_cert} is not a CA certificate (basicConstraints CA:TRUE)")
    if not pair_matches(system, system.path(layout.local_ca_cert), system.path(layout.local_ca_key)):
        raise CheckFailed(f"{layout.local_ca_cert} and {layout.local_ca_key} do not match")


def issued_by_ca(system: System, layout: Layout) -> bool:
    """Whether the service's certificate chains to the local CA (`openssl verify`)."""
    ca, cert = system.path(layout.local_ca_cert), system.path(layout.tls_cert)
    return system.run(["openssl", "verify", "-CAfile", str(ca), str(cert)], check=False).ok


def issue(system: System, layout: Layout, names: Sequence[str], days: int) -> tuple[bytes, bytes]:
    """A new key and a server-auth certificate for `names`, signed by the local CA: (cert, key)."""
    ca, ca_key = system.path(layout.local_ca_cert), system.path(layout.local_ca_key)
    serial = f"0x{secrets.randbits(127):032x}"  # random and positive, as RFC 5280 asks
    with tempfile.TemporaryDirectory(prefix="integrator-tls-") as tmp:
        key, csr, cert, cnf = (Path(tmp) / n for n in ("key.pem", "csr.pem", "cert.pem", "leaf.cnf"))
        exts = [*leaf_extensions(names), "authorityKeyIdentifier = keyid:always"]
        cnf.write_text(openssl_config(names[0], exts))
        system.run(["openssl", "req", "-new", *EC_KEY, "-nodes", "-config", str(cnf),
                    "-keyout", str(key), "-out", str(csr)])  # fmt: skip
        system.run(
            ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-set_serial", serial, "-days", str(days), "-sha256", "-extfile", str(cnf),
             "-extensions", "ext", "-out", str(cert)]
        )  # fmt: skip
        return cert.read_bytes(), key.read_bytes()


def _make_ca(system: System, common_name: str) -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory(prefix="integrator-ca-") as tmp:
        key, cert, cnf = Path(tmp) / "ca.key", Path(tmp) / "ca.pem", Path(tmp) / "ca.cnf"
        cnf.write_text(openssl_config(common_name, CA_EXTENSIONS))
        system.run(
            ["openssl", "req", "-x509", "-new", *EC_KEY, "-nodes", "-sha256", "-days", str(CA_DAYS),
             "-config", str(cnf), "-extensions", "ext", "-keyout", str(key), "-out", str(cert)]
        )  # fmt: skip
        return cert.read_bytes(), key.read_bytes()


def pair_matches(system: System, cert: Path, key: Path) -> bool:
    """Same public key in the certificate and the key file."""
    cert_pub = system.run(["openssl", "x509", "-noout", "-pubkey", "-in", str(cert)], check=False)
    key_pub = system.run(["openssl", "pkey", "-pubout", "-in", str(key)], check=False)
    return cert_pub.ok and key_pub.ok and cert_pub.stdout.strip() == key_pub.stdout.strip()
