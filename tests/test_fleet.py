"""Fleets without hosts: the LB site from the same renderer, the bundle's lb input checks, the
ansible-playbook command lines, and the collection's playbooks through ansible-playbook's own
syntax check. The fleet on real hosts is tests/test_fleet_e2e.py."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from integrator.errors import UsageError
from integrator.fleet import COLLECTION, COLLECTIONS_PATH, PLAYBOOKS, playbook_argv
from integrator.layout import Layout
from integrator.render import nginx_files
from integrator.render.lb import Backends
from integrator.render.nginx import site

from .render_checks import DEFAULT

V = (1, 22, 1)
APPS = ("10.0.0.11", "10.0.0.12", "app3.internal")


def _lb(spec=DEFAULT.spec, down: frozenset[str] = frozenset()) -> str:  # type: ignore[no-untyped-def]
    return site(spec, Layout.for_spec(spec), V, Backends(APPS, down))


def test_lb_site_is_the_single_host_site_with_the_app_hosts_as_upstream() -> None:
    spec = DEFAULT.spec
    single, lb = site(spec, Layout.for_spec(spec), V), _lb()
    assert "server unix:" in single and "server unix:" not in lb
    for host in APPS:
        assert f"server {host}:443 max_fails=2 fail_timeout=10s;" in lb
    assert f"proxy_pass https://{spec.name}_app;" in lb
    assert "proxy_ssl_server_name on;" in lb and "non_idempotent" not in lb
    # everything but the upstream and the TLS to it is the same text: one renderer, no copy
    differing = {line.strip() for line in set(lb.splitlines()) ^ set(single.splitlines())}
    assert all(line.startswith(("server ", "proxy_", "keepalive", "#")) for line in differing), differing


def test_a_drained_host_is_down_and_the_others_stay() -> None:
    lb = _lb(down=frozenset({"10.0.0.12"}))
    assert "server 10.0.0.12:443 max_fails=2 fail_timeout=10s down;" in lb
    assert "server 10.0.0.11:443 max_fails=2 fail_timeout=10s;" in lb


def test_app_hosts_are_verified_against_the_fleet_ca_only_with_local_ca() -> None:
    spec = DEFAULT.spec
    local = dataclasses.replace(spec, tls=dataclasses.replace(spec.tls, mode="local-ca"))
    layout = Layout.for_spec(local)
    assert f"proxy_ssl_trusted_certificate {layout.local_ca_cert};" in _lb(local)
    assert "proxy_ssl_verify on;" in _lb(local)
    assert "proxy_ssl_verify off;" in _lb(spec) and "proxy_ssl_trusted_certificate" not in _lb(spec)


def test_lb_files_are_the_site_snippets_and_catch_alls() -> None:
    spec = DEFAULT.spec
    layout = Layout.for_spec(spec)
    files = nginx_files(spec, layout, V, Backends(APPS))
    paths = {str(f.path) for f in files}
    assert str(layout.nginx_site) in paths and not any("systemd" in p for p in paths)


@pytest.mark.parametrize(
    ("hosts", "down", "message"),
    [
        ((), frozenset(), "at least one backend"),
        (("10.0.0.1", "10.0.0.1"), frozenset(), "named twice"),
        (("10.0.0.1",), frozenset({"10.0.0.9"}), "not one of the backends"),
        (("10.0.0.1;evil",), frozenset(), "not an IP address or host name"),
        (("a b",), frozenset(), "not an IP address or host name"),
    ],
)
def test_backends_are_refused_unless_plain_addresses(
    hosts: tuple[str, ...], down: frozenset[str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        Backends(hosts, down)


def test_ipv6_backends_are_bracketed() -> None:
    lb = site(DEFAULT.spec, Layout.for_spec(DEFAULT.spec), V, Backends(("fd00::1",)))
    assert "server [fd00::1]:443 " in lb


def test_playbook_argv(tmp_path: Path) -> None:
    inv, bundle = tmp_path / "hosts.yml", tmp_path / "shop-1.0.pyz"
    argv = playbook_argv("rollout", inv, bundle, check=True, extra={"integrator_serial": "2"})
    assert argv == [
        "ansible-playbook", "-i", str(inv), "integrator.fleet.rollout",
        "-e", f"integrator_bundle={bundle}",
        "-e", f"integrator_fleet_ca_dir={tmp_path / 'integrator-fleet-ca'}",
        "-e", "integrator_serial=2", "--check", "--diff",
    ]  # fmt: skip
    with pytest.raises(UsageError):
        playbook_argv("nope", inv, bundle)


@pytest.mark.parametrize("playbook", ["status", "unlock"])
def test_read_only_playbooks_get_no_ca_to_make(playbook: str, tmp_path: Path) -> None:
    argv = playbook_argv(playbook, tmp_path / "hosts.yml", tmp_path / "shop-1.0.pyz")
    assert not any(a.startswith("integrator_fleet_ca_dir=") for a in argv), argv


def _ansible(name: str) -> str:
    from integrator.fleet import tool

    if shutil.which(name) is None and not Path(sys.executable).with_name(name).exists():
        pytest.skip(f"{name} not installed (bash scripts/setup.sh installs ansible-core)")
    return tool(name)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbooks_pass_ansible_syntax_check(playbook: str, tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n    integrator_app:\n      hosts: {a1: {}}\n"
        "    integrator_lb:\n      hosts: {lb: {}}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path),
    }
    argv = [_ansible("ansible-playbook"), "-i", str(inv), f"integrator.fleet.{playbook}", "--syntax-check"]
    proc = subprocess.run([*argv, "-e", "integrator_bundle=x.pyz"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_collection_builds_offline(tmp_path: Path) -> None:
    _ansible("ansible-galaxy")
    from integrator.fleet import build_collection

    result = build_collection(tmp_path)
    tarball = Path(result.data["tarball"])
    assert tarball.name == "integrator-fleet-0.1.0.tar.gz" and (COLLECTION / "galaxy.yml").is_file()
    listing = subprocess.run(["tar", "tzf", str(tarball)], capture_output=True, text=True, check=True).stdout
    assert "playbooks/rollout.yml" in listing and "roles/integrator/tasks/roll_one.yml" in listing
