"""Restoring after a failed activation never raises: files come back even when systemd refuses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from integrator.errors import EnvironmentProblem, HostError
from integrator.host.activate import HostContext, activate, restore
from integrator.host.apply import activation_for
from integrator.host.facts import HostFacts, systemd_booted
from integrator.host.fs import FileWriter
from integrator.host.secrets import require_credentials
from integrator.host.system import Proc, System
from integrator.layout import Layout
from integrator.spec import parse_spec

from .spec_edit import edit

SPEC = parse_spec({"service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}})
FACTS = HostFacts("debian", "Debian", "h", (1, 22, 1), "/usr/bin/python3", (3, 11, 2), "x86_64", 252, False)


class BrokenSystemd(System):
    """A host whose systemctl fails (as on a machine without systemd as PID 1)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.ran: list[str] = []

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        self.ran.append(" ".join(argv))
        if argv[0] == "systemctl" and kwargs.get("check", True):
            raise HostError(f"{' '.join(argv)} failed (exit 1): Failed to connect to bus")
        return Proc(tuple(argv), 1 if argv[0] == "systemctl" else 0, "", "")


def test_restore_puts_files_back_even_when_systemd_fails(tmp_path: Path) -> None:
    system = BrokenSystemd(tmp_path)
    layout = Layout.for_spec(SPEC, "debian")
    writer = FileWriter(system)
    (tmp_path / "etc/nginx/conf.d").mkdir(parents=True)
    writer.put(layout.nginx_site, "server {}\n")
    writer.put(PurePosixPath("/etc/nginx/conf.d/keep.conf"), "new\n")
    assert (tmp_path / "etc/nginx/conf.d/shop.conf").exists()

    ctx = HostContext(system, FACTS, SPEC, layout)
    plan = activation_for(ctx, "20260101T000000Z-abcdef12")
    assert restore(ctx, writer, plan, previous=None) is None
    assert not (tmp_path / "etc/nginx/conf.d/shop.conf").exists()
    assert not (tmp_path / "etc/nginx/conf.d/keep.conf").exists()
    assert "systemctl daemon-reload" in system.ran


def test_systemd_booted_is_sd_booted(tmp_path: Path) -> None:
    assert not systemd_booted(System(tmp_path))
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert systemd_booted(System(tmp_path))


def test_secrets_need_a_systemd_with_credentials() -> None:
    vault = parse_spec(
        {"service": {"name": "vault", "version": "1", "entry": "v:app"}, "secrets": {"files": ["api_key"]}}
    )
    require_credentials(vault, 252)  # RHEL 9, Debian 12
    require_credentials(SPEC, 239)  # no secrets: RHEL 8 is fine
    with pytest.raises(
        EnvironmentProblem, match=r"LoadCredential=, systemd >= 247\); this host has systemd 239"
    ):
        require_credentials(vault, 239)


class InvalidNginx(System):
    """A host whose `nginx -t` rejects the configuration; everything else succeeds."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.ran: list[str] = []

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        self.ran.append(" ".join(argv))
        if list(argv[:2]) == ["nginx", "-t"]:
            return Proc(tuple(argv), 1, "", "nginx: [emerg] unknown directive\n")
        return Proc(tuple(argv), 0, "", "")


def test_an_invalid_nginx_config_stops_activation_before_any_start(tmp_path: Path) -> None:
    system = InvalidNginx(tmp_path)
    layout = Layout.for_spec(SPEC, "debian")
    ctx = HostContext(system, FACTS, SPEC, layout)
    outcome = activate(
        ctx, FileWriter(system), activation_for(ctx, "20260101T000000Z-abcdef12"), previous=None
    )
    assert not outcome.ok and outcome.restored is None and outcome.journal == []
    assert outcome.reason == "nginx -t failed: nginx: [emerg] unknown directive"
    assert not any(r.startswith(("systemctl start", "systemctl restart")) for r in system.ran)
    assert not (tmp_path / "etc/nginx/conf.d/shop.conf").exists()  # the written files were undone


class CheckedNginx(InvalidNginx):
    """Like InvalidNginx, and remembers which catch-alls conf.d held at each `nginx -t`."""

    seen: list[list[str]] = []

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        if list(argv[:2]) == ["nginx", "-t"]:
            self.seen.append(sorted(p.name for p in (self.root / "etc/nginx/conf.d").glob("00-*")))
        return super().run(argv, **kwargs)


def test_a_port_the_release_left_loses_its_catch_all_and_gets_it_back_on_failure(tmp_path: Path) -> None:
    from integrator.render import render_all

    system = CheckedNginx(tmp_path)
    system.seen = []
    layout = Layout.for_spec(SPEC, "debian")
    old = edit(SPEC, http={"https_port": 8443})
    FileWriter(system).put_rendered(render_all(old, layout, "r0"))  # shop served on 8443 before
    ctx = HostContext(system, FACTS, SPEC, layout)
    outcome = activate(ctx, FileWriter(system), activation_for(ctx, "r1"), previous=None)
    assert not outcome.ok
    # The activation's check: the new port's catch-all, not the old one's.
    checked = system.seen[0]
    assert checked == ["00-integrator-catch-all-http-80.conf", "00-integrator-catch-all-https-443.conf"]
    left = sorted(p.name for p in (tmp_path / "etc/nginx/conf.d").glob("00-*"))
    assert left == ["00-integrator-catch-all-http-80.conf", "00-integrator-catch-all-https-8443.conf"]
