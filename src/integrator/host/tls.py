"""TLS material: a certificate made on the host (self-signed, or issued by the host's local CA),
or provided files checked.

The key never leaves the host and is root-only (0600); nginx's master process reads it as root.
Certificates made here live at most DAYS days (Mozilla's intermediate profile allows 366) and are
made again by the next deploy once they are within RENEW_DAYS of expiry, when the server names
changed, or when the mode changed; `doctor` warns RENEW_DAYS ahead.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import CheckFailed
from ..layout import Layout
from ..spec import ServiceSpec
from . import localca
from .fs import CHANGE, CREATE, Change, FileWriter
from .system import System

DAYS = 365  # Mozilla intermediate: a leaf certificate lives at most 366 days
RENEW_DAYS = 30  # a deploy renews, and `doctor` warns, this long before expiry
DAY_S = 86400
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class TlsFiles:
    cert: PurePosixPath
    key: PurePosixPath
    verify_against: str | None  # what the health check trusts: None for self-signed


def tls_files(spec: ServiceSpec, layout: Layout) -> TlsFiles:
    if spec.tls.mode == "provided":
        assert spec.tls.cert and spec.tls.key  # validated by the spec
        return TlsFiles(PurePosixPath(spec.tls.cert), PurePosixPath(spec.tls.key), spec.tls.cert)
    if spec.tls.mode == "local-ca":
        return TlsFiles(layout.tls_cert, layout.tls_key, str(layout.local_ca_cert))
    return TlsFiles(layout.tls_cert, layout.tls_key, None)


# --- facts: what a certificate says (openssl x509 -text, parsed without a host) -----------------


@dataclass(frozen=True)
class CertFacts:
    not_before: float  # epoch seconds
    not_after: float
    dns_names: frozenset[str]
    self_issued: bool  # issuer == subject

    @property
    def lifetime_days(self) -> int:
        return int((self.not_after - self.not_before) // DAY_S)


def cert_text_argv(path: Path) -> list[str]:
    return ["openssl", "x509", "-noout", "-text", "-in", str(path)]


def parse_cert_text(text: str) -> CertFacts:
    """`openssl x509 -noout -text`: validity, DNS subject alternative names, issuer vs subject."""
    fields: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() in ("Not Before", "Not After", "Issuer", "Subject"):
            fields.setdefault(key.strip(), value.strip())
        if line.strip().startswith("X509v3 Subject Alternative Name") and i + 1 < len(lines):
            fields["san"] = lines[i + 1].strip()
    try:
        not_before = ssl.cert_time_to_seconds(fields["Not Before"])
        not_after = ssl.cert_time_to_seconds(fields["Not After"])
    except (KeyError, ValueError):
        raise CheckFailed("cannot read the validity of a certificate (openssl x509 -text)") from None
    names = [n.strip()[4:] for n in fields.get("san", "").split(",") if n.strip().startswith("DNS:")]
    return CertFacts(not_before, float(not_after), frozenset(names),
                     fields.get("Issuer") == fields.get("Subject"))  # fmt: skip


def cert_facts(system: System, path: PurePosixPath) -> CertFacts | None:
    """None when there is no readable certificate at `path`."""
    real = system.path(path)
    if not real.is_file():
        return None
    proc = system.run(cert_text_argv(real), check=False)
    return parse_cert_text(proc.stdout) if proc.ok else None


# --- pure decisions ------------------------------------------------------------------------------


def wanted_names(spec: ServiceSpec, hostname: str) -> list[str]:
    """DNS names of the certificate: the server names, this host's name, localhost."""
    names: list[str] = []
    host = [hostname] if HOSTNAME_RE.match(hostname) else []  # never text that is not a name
    for name in (*spec.effective_server_names, *host, "localhost"):
        if name != "_" and name not in names:
            names.append(name)
    return names


def subject_alt_names(spec: ServiceSpec, hostname: str) -> str:
    return ",".join(f"DNS:{n}" for n in wanted_names(spec, hostname)) + ",IP:127.0.0.1"


def renewal_reason(
    cert: CertFacts | None, names: Sequence[str], mode: str, now: float, renew_days: int = RENEW_DAYS
) -> str | None:
    """Why a deploy must make the certificate again (None: keep it). Issuer and key checks that
    need the files are made by `plan_tls`."""
    if cert is None:
        return "no certificate yet"
    left = (cert.not_after - now) / DAY_S
    if left < renew_days:
        return "expired" if left <= 0 else f"expires in {int(left)} days"
    if cert.lifetime_days > DAYS + 1:
        return f"valid for {cert.lifetime_days} days, more than {DAYS + 1}"
    if cert.dns_names != frozenset(names):
        return "server names changed"
    if (mode == "self-signed") != cert.self_issued:
        return f"not made for mode {mode!r}"
    return None


def expiry_note(path: PurePosixPath, cert: CertFacts, now: float, renews: bool) -> tuple[str, str] | None:
    """`doctor`'s word on a certificate: ("problem", text) once expired, ("warning", text) within
    RENEW_DAYS, else None."""
    left = (cert.not_after - now) / DAY_S
    fix = "the next deploy renews it" if renews else "replace the provided certificate"
    if left <= 0:
        return "problem", f"{path} has expired ({fix})"
    if left < RENEW_DAYS:
        return "warning", f"{path} expires in {int(left)} days ({fix})"
    return None


# --- facts, decision, action: what a deploy reads, decides and does about TLS ---------------------


@dataclass(frozen=True)
class TlsFacts:
    """The TLS files as a deploy finds them (`probe_tls`)."""

    cert: CertFacts | None  # the certificate, None when there is no readable one
    cert_present: bool
    key_present: bool
    pair_matches: bool  # the same public key in both
    issued_by_ca: bool  # local-ca: the certificate chains to the host's CA
    ca_present: tuple[bool, bool]  # local-ca: the CA's certificate, its key


def probe_tls(system: System, spec: ServiceSpec, layout: Layout) -> TlsFacts:
    """Read the files; a local CA found here is checked first (who may change it), as root."""
    files = tls_files(spec, layout)
    cert_present, key_present = system.path(files.cert).is_file(), system.path(files.key).is_file()
    pair = cert_present and key_present and _pair_matches(system, files)
    if spec.tls.mode == "provided":
        return TlsFacts(None, cert_present, key_present, pair, False, (False, False))
    ca = localca.ca_present(system, layout) if spec.tls.mode == "local-ca" else (False, False)
    if all(ca) and system.is_root():  # `deploy --plan` as another user cannot read the key
        localca.check_ca_files(system, layout)
    cert = cert_facts(system, files.cert)
    issued = (
        spec.tls.mode == "local-ca" and cert is not None and all(ca) and localca.issued_by_ca(system, layout)
    )
    return TlsFacts(cert, cert_present, key_present, pair, issued, ca)


@dataclass(frozen=True)
class TlsPlan:
    """What a deploy does about TLS: make the local CA, make the certificate again (and why)."""

    make_ca: bool
    renew: str | None  # why the certificate is made (again); None: it is kept
    changes: tuple[Change, ...]  # the files this writes, as `deploy --plan` lists them


def plan_tls(spec: ServiceSpec, layout: Layout, facts: TlsFacts, hostname: str, now: float) -> TlsPlan:
    """Pure. Make the certificate when missing, close to expiry, for other names or another mode
    (self-signed, or from the local CA, which is made first if missing); a provided pair must
    exist and match, half a local CA is refused (CheckFailed, before any change)."""
    files = tls_files(spec, layout)
    if spec.tls.mode == "provided":
        for path, present in ((files.cert, facts.cert_present), (files.key, facts.key_present)):
            if not present:
                raise CheckFailed(f"[tls] mode = 'provided' but {path} does not exist on the host")
        if not facts.pair_matches:
            raise CheckFailed(f"{files.cert} and {files.key} do not match (different public keys)")
        return TlsPlan(False, None, ())
    changes: list[Change] = []
    make_ca = spec.tls.mode == "local-ca" and not any(facts.ca_present)
    if spec.tls.mode == "local-ca" and not make_ca and not all(facts.ca_present):
        lack = layout.local_ca_key if facts.ca_present[0] else layout.local_ca_cert
        raise CheckFailed(f"{lack} is missing: place both the local CA's certificate and key in "
                          f"{layout.local_ca_dir}, or neither (the deploy then makes a CA)")  # fmt: skip
    if make_ca:
        changes += [
            Change(layout.local_ca_cert, CREATE, "(a new local CA)"),
            Change(layout.local_ca_key, CREATE),
        ]
    reason = renewal_reason(facts.cert, wanted_names(spec, hostname), spec.tls.mode, now)
    if reason is None and not facts.pair_matches:
        reason = "the key does not match"
    if reason is None and spec.tls.mode == "local-ca" and not facts.issued_by_ca:
        reason = "not issued by the local CA"
    if reason is None:
        return TlsPlan(make_ca, None, tuple(changes))
    action = CREATE if facts.cert is None else CHANGE
    changes += [Change(files.cert, action, f"(certificate: {reason})"), Change(files.key, action)]
    return TlsPlan(make_ca, reason, tuple(changes))


def apply_tls(
    system: System, writer: FileWriter, spec: ServiceSpec, layout: Layout, hostname: str, plan: TlsPlan
) -> list[Change]:
    """Do what `plan` says: the CA, then a new key and certificate (key first, root-only)."""
    changes = localca.make_ca(system, writer, layout, hostname) if plan.make_ca else []
    if plan.renew is None:
        return changes
    files, names = tls_files(spec, layout), wanted_names(spec, hostname)
    if spec.tls.mode == "local-ca":
        cert_pem, key_pem = localca.issue(system, layout, names, DAYS)
    else:
        cert_pem, key_pem = generate_self_signed(system, names)
    return [*changes, writer.put(files.key, key_pem, 0o600, secret=True), writer.put(files.cert, cert_pem)]


def ensure_tls(
    system: System,
    writer: FileWriter,
    spec: ServiceSpec,
    layout: Layout,
    hostname: str,
    now: float | None = None,
) -> list[Change]:
    """Probe, plan and apply in one call (a fleet's LB, host/lb.py; a deploy takes the three
    steps apart); with a dry-run writer, only the plan's changes."""
    import time

    plan = plan_tls(
        spec, layout, probe_tls(system, spec, layout), hostname, time.time() if now is None else now
    )
    return list(plan.changes) if writer.dry_run else apply_tls(system, writer, spec, layout, hostname, plan)


def generate_self_signed(system: System, names: Sequence[str]) -> tuple[bytes, bytes]:
    """`openssl req -x509` for a server-auth leaf with SANs = `names`; returns (cert, key) bytes."""
    with tempfile.TemporaryDirectory(prefix="integrator-tls-") as tmp:
        key, cert, cnf = Path(tmp) / "key.pem", Path(tmp) / "cert.pem", Path(tmp) / "req.cnf"
        cnf.write_text(localca.openssl_config(names[0], localca.leaf_extensions(names)))
        system.run(
            [
                "openssl", "req", "-x509", "-new", *localca.EC_KEY, "-nodes", "-sha256",
                "-days", str(DAYS), "-config", str(cnf), "-extensions", "ext",
                "-keyout", str(key), "-out", str(cert),
            ]
        )  # fmt: skip
        return cert.read_bytes(), key.read_bytes()


def _pair_matches(system: System, files: TlsFiles) -> bool:
    return localca.pair_matches(system, system.path(files.cert), system.path(files.key))
