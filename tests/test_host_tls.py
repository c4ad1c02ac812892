"""TLS material made on a host: lifetime, renewal, the local CA and who may change it.

Real `openssl` on this machine, files in a temporary root (System(root=tmp)); the certificates
are checked with openssl and with cryptography's strict verifier (the one sslyze uses).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from integrator.errors import CheckFailed, SpecError
from integrator.host import tls
from integrator.host.fs import FileWriter
from integrator.host.system import System
from integrator.layout import Layout
from integrator.spec import ServiceSpec, TlsSpec, parse_spec

from .spec_edit import edit, make

DAY = 86400
SPEC = make("shop", "1.0", "shop:app", http={"server_names": ("shop.example",)})
CA_SPEC = replace(SPEC, tls=TlsSpec(mode="local-ca"))
LAYOUT = Layout.for_spec(SPEC)


def _facts(system: System, path: PurePosixPath) -> tls.CertFacts:
    found = tls.cert_facts(system, path)
    assert found is not None
    return found


def _deploy_tls(system: System, spec: ServiceSpec, now: float | None = None) -> list[str]:
    changes = tls.ensure_tls(system, FileWriter(system), spec, LAYOUT, "host1", now=now)
    return [str(c.path) for c in changes if c.changed]


def _verify_strict(system: System, name: str) -> None:
    """cryptography's web-PKI verifier: what sslyze's certificate path validation runs."""
    ca = x509.load_pem_x509_certificate(system.path(LAYOUT.local_ca_cert).read_bytes())
    leaf = x509.load_pem_x509_certificate(system.path(LAYOUT.tls_cert).read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName(name))
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca


@pytest.fixture
def system(tmp_path: Path) -> System:
    return System(tmp_path)


def test_a_self_signed_certificate_lives_at_most_366_days(system: System) -> None:
    assert _deploy_tls(system, SPEC) == [str(LAYOUT.tls_key), str(LAYOUT.tls_cert)]
    cert = _facts(system, LAYOUT.tls_cert)
    assert 360 <= cert.lifetime_days <= 366
    assert cert.dns_names == {"shop.example", "host1", "localhost"} and cert.self_issued
    assert oct(system.path(LAYOUT.tls_key).stat().st_mode & 0o777) == "0o600"


def test_the_next_deploy_renews_a_certificate_30_days_before_expiry(system: System) -> None:
    _deploy_tls(system, SPEC)
    first = system.path(LAYOUT.tls_cert).read_bytes()
    not_after = _facts(system, LAYOUT.tls_cert).not_after
    assert _deploy_tls(system, SPEC, now=not_after - 31 * DAY) == []  # kept
    assert system.path(LAYOUT.tls_cert).read_bytes() == first
    assert _deploy_tls(system, SPEC, now=not_after - 29 * DAY) == [str(LAYOUT.tls_key), str(LAYOUT.tls_cert)]
    assert system.path(LAYOUT.tls_cert).read_bytes() != first


def test_changed_server_names_renew_the_certificate(system: System) -> None:
    _deploy_tls(system, SPEC)
    renamed = edit(SPEC, http={"server_names": ("shop.example", "www.shop.example")})
    plan = tls.ensure_tls(system, FileWriter(system, dry_run=True), renamed, LAYOUT, "host1")
    assert [c.action for c in plan] == ["change", "change"] and "server names changed" in plan[0].diff
    _deploy_tls(system, renamed)
    assert "www.shop.example" in _facts(system, LAYOUT.tls_cert).dns_names


@pytest.mark.parametrize(
    ("left_days", "lifetime", "names", "self_issued", "reason"),
    [
        (200, 365, {"a", "localhost"}, True, None),
        (29, 365, {"a", "localhost"}, True, "expires in 29 days"),
        (-1, 365, {"a", "localhost"}, True, "expired"),
        (700, 825, {"a", "localhost"}, True, "valid for 825 days, more than 366"),  # made by older code
        (200, 365, {"a"}, True, "server names changed"),
        (200, 365, {"a", "localhost"}, False, "not made for mode 'self-signed'"),
    ],
)
def test_renewal_reason(
    left_days: int, lifetime: int, names: set[str], self_issued: bool, reason: str | None
) -> None:
    now = 1_800_000_000.0
    cert = tls.CertFacts(
        now + (left_days - lifetime) * DAY, now + left_days * DAY, frozenset(names), self_issued
    )
    assert tls.renewal_reason(cert, ["a", "localhost"], "self-signed", now) == reason


def test_local_ca_mode_is_a_spec_value() -> None:
    base = {"service": {"name": "shop", "version": "1", "entry": "shop:app"}}
    assert parse_spec({**base, "tls": {"mode": "local-ca"}}).tls.mode == "local-ca"
    with pytest.raises(SpecError, match=r"\[tls\] cert/key only go with mode = 'provided'"):
        parse_spec({**base, "tls": {"mode": "local-ca", "cert": "/etc/ca.pem", "key": "/etc/ca.key"}})


def test_local_ca_is_made_once_and_issues_a_server_certificate(system: System) -> None:
    changed = _deploy_tls(system, CA_SPEC)
    assert changed == [str(p) for p in (LAYOUT.local_ca_dir, LAYOUT.local_ca_key, LAYOUT.local_ca_cert,
                                         LAYOUT.tls_key, LAYOUT.tls_cert)]  # fmt: skip
    assert oct(system.path(LAYOUT.local_ca_key).stat().st_mode & 0o777) == "0o600"
    _verify_strict(system, "shop.example")
    leaf = _facts(system, LAYOUT.tls_cert)
    assert leaf.lifetime_days <= 366 and not leaf.self_issued
    text = subprocess.run(tls.cert_text_argv(system.path(LAYOUT.tls_cert)), capture_output=True, text=True)
    assert "TLS Web Server Authentication" in text.stdout and "CA:FALSE" in text.stdout
    assert tls.tls_files(CA_SPEC, LAYOUT).verify_against == str(LAYOUT.local_ca_cert)
    ca_before = system.path(LAYOUT.local_ca_cert).read_bytes()
    assert _deploy_tls(system, CA_SPEC) == []  # nothing to renew, the CA is kept
    # A second service gets its certificate from the same CA.
    other = Layout("billing", LAYOUT.profile)
    tls.ensure_tls(system, FileWriter(system), edit(CA_SPEC, service={"name": "billing"}), other, "host1")
    assert system.path(LAYOUT.local_ca_cert).read_bytes() == ca_before


def test_switching_modes_replaces_the_certificate(system: System) -> None:
    _deploy_tls(system, SPEC)
    assert str(LAYOUT.tls_cert) in _deploy_tls(system, CA_SPEC)  # self-signed -> from the CA
    _verify_strict(system, "shop.example")
    assert str(LAYOUT.tls_cert) in _deploy_tls(system, SPEC)  # and back
    assert _facts(system, LAYOUT.tls_cert).self_issued


def _operator_ca(system: System) -> bytes:
    """An operator's CA placed before the first deploy, as docs/security.md says."""
    ca_dir = system.path(LAYOUT.local_ca_dir)
    ca_dir.mkdir(parents=True)
    cnf = ca_dir.parent / "op.cnf"
    cnf.write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = Fleet CA\n[ext]\n"
        "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n"
        "subjectKeyIdentifier = hash\n"
    )
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1",
         "-nodes", "-days", "30", "-config", str(cnf), "-extensions", "ext",
         "-keyout", str(ca_dir / "ca.key"), "-out", str(ca_dir / "ca.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    os.chmod(ca_dir / "ca.key", 0o600)
    return (ca_dir / "ca.pem").read_bytes()


def test_an_operator_placed_ca_is_used_as_it_is(system: System) -> None:
    placed = _operator_ca(system)
    assert _deploy_tls(system, CA_SPEC) == [str(LAYOUT.tls_key), str(LAYOUT.tls_cert)]
    assert system.path(LAYOUT.local_ca_cert).read_bytes() == placed
    _verify_strict(system, "shop.example")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda d: os.chmod(d / "ca.key", 0o644), r"ca.key is owned by uid \d+ with mode 0644"),
        (lambda d: os.chmod(d, 0o777), r"local-ca is owned by uid \d+ with mode 0777"),
        (lambda d: (d / "ca.key").unlink(), r"ca.key is missing: place both"),
        pytest.param(lambda d: os.chown(d / "ca.pem", 65534, 65534), r"ca.pem is owned by uid 65534",
                     marks=pytest.mark.root),
        (lambda d: ((d / "ca.key").rename(d / "real.key"), (d / "ca.key").symlink_to("real.key")),
         r"ca.key is a symlink"),
        (lambda d: (d / "ca.pem").write_bytes(b"not a certificate\n"), r"ca.pem is not a CA certificate"),
    ],
)  # fmt: skip
def test_a_ca_that_someone_else_could_change_is_refused(
    system: System, spoil: Callable[[Path], object], message: str
) -> None:
    _operator_ca(system)
    spoil(system.path(LAYOUT.local_ca_dir))
    listing = sorted(str(p) for p in system.root.rglob("*"))
    with pytest.raises(CheckFailed, match=message):
        _deploy_tls(system, CA_SPEC)
    assert sorted(str(p) for p in system.root.rglob("*")) == listing  # nothing written


@pytest.mark.parametrize(
    ("left_days", "renews", "expected"),
    [
        (31, True, None),
        (29, True, ("warning", "/c.pem expires in 29 days (the next deploy renews it)")),
        (10, False, ("warning", "/c.pem expires in 10 days (replace the provided certificate)")),
        (-2, False, ("problem", "/c.pem has expired (replace the provided certificate)")),
    ],
)
def test_expiry_note(left_days: int, renews: bool, expected: tuple[str, str] | None) -> None:
    now = time.time()
    cert = tls.CertFacts(now - 100 * DAY, now + left_days * DAY + 60, frozenset(), True)
    assert tls.expiry_note(PurePosixPath("/c.pem"), cert, now, renews) == expected
