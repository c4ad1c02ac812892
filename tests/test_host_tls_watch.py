"""The watch of a provided certificate through a service's life (issue 10 item 5), on a
FakeHost: enabled by a deploy, dropped when the mode changes, back after a failed activation
or a rollback, removed by uninstall."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from integrator.host.activate import activate, previous_release
from integrator.host.apply import activation_for
from integrator.host.fs import FileWriter
from integrator.host.lifecycle import rollback_local
from integrator.host.tls import ensure_tls
from integrator.host.uninstall import uninstall_local
from integrator.layout import Layout
from integrator.spec import TlsSpec

from .host_fakes import SPEC, FakeHost, ctx_for, deployed, make_host

R1, R2 = (f"2026010{n}T000000Z-aaaaaaaa" for n in (1, 2))
CERT, KEY = "/etc/ssl/shop/cert.pem", "/etc/ssl/shop/key.pem"
PROVIDED = dataclasses.replace(SPEC, tls=TlsSpec(mode="provided", cert=CERT, key=KEY))
LAYOUT = Layout.for_spec(SPEC, "debian")
WATCH = LAYOUT.tls_watch_unit


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    host = make_host(tmp_path / "root", monkeypatch)
    host.path(CERT).parent.mkdir(parents=True)
    host.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-days", "30", "-subj", "/CN=shop.example", "-keyout", str(host.path(KEY)),
              "-out", str(host.path(CERT))])  # fmt: skip
    return host


def watching(host: FakeHost) -> tuple[bool, bool]:
    """(unit files on disk, the .path unit active)."""
    files = all(host.path(p).is_file() for p in LAYOUT.tls_watch_unit_paths)
    return files, WATCH in host.active


def test_a_provided_certificate_is_watched_from_the_deploy_on(host: FakeHost) -> None:
    deployed(host, PROVIDED, rid=R1)
    assert watching(host) == (True, True)
    assert f"systemctl enable --quiet {WATCH}" in host.ran


def test_leaving_provided_drops_the_watch_and_a_rollback_brings_it_back(host: FakeHost) -> None:
    deployed(host, PROVIDED, rid=R1)
    deployed(host, SPEC, rid=R2)
    assert watching(host) == (False, False)
    assert f"systemctl disable --quiet {WATCH}" in host.ran
    assert rollback_local(host, "shop", None).exit_code == 0
    assert watching(host) == (True, True)


def test_a_failed_activation_puts_the_watch_back(host: FakeHost) -> None:
    deployed(host, PROVIDED, rid=R1)
    ctx, writer = ctx_for(host, SPEC), FileWriter(host)
    ensure_tls(host, writer, SPEC, LAYOUT, ctx.facts.hostname)
    host.serving = False
    outcome = activate(ctx, writer, activation_for(ctx, R2), previous_release(host, LAYOUT, R1))
    assert not outcome.ok  # (not restored: this fake host serves nothing now)
    assert watching(host) == (True, True)


def test_uninstall_removes_the_watch(host: FakeHost) -> None:
    deployed(host, PROVIDED, rid=R1)
    assert uninstall_local(host, "shop", False).exit_code == 0
    assert watching(host) == (False, False)
