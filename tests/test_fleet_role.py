"""The role integrator.fleet.integrator run by the real ansible-playbook on this machine, with
local connections only (no host, no network): its argument specs refuse a bad input before any
change, and the cleanup of staged bundles keeps this run's and is idempotent. The fleet on real
hosts is tests/test_fleet_e2e.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from integrator.fleet import COLLECTIONS_PATH

from .test_fleet import _ansible

LOCAL = f"ansible_connection: local, ansible_python_interpreter: {sys.executable}"


def _run(tmp_path: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n"
        f"    integrator_app:\n      hosts: {{a1: {{{LOCAL}, integrator_disk_factor: lots}}}}\n"
        f"    integrator_lb:\n      hosts: {{lb: {{{LOCAL}}}}}\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "remote"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [_ansible("ansible-playbook"), "-i", str(inv), target, *extra]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "shop-0.2.0.pyz"
    bundle.write_bytes(b"PK\x05\x06" + bytes(18))  # read by the controller only (its size, sha256)
    return bundle


def test_a_missing_bundle_is_refused_by_the_argument_spec(tmp_path: Path) -> None:
    proc = _run(tmp_path, "integrator.fleet.rollout", "-e", f"integrator_fleet_ca_dir={tmp_path / 'ca'}")
    assert proc.returncode != 0
    assert "Validating arguments against arg spec 'controller'" in proc.stdout, proc.stdout[-3000:]
    assert "missing required arguments: integrator_bundle" in proc.stdout, proc.stdout[-3000:]
    assert not (tmp_path / "ca").exists()  # the first task that changes anything never ran


def test_a_wrong_typed_variable_stops_the_run_before_any_change(tmp_path: Path) -> None:
    bundle, ca = _bundle(tmp_path), tmp_path / "ca"
    proc = _run(
        tmp_path,
        "integrator.fleet.rollout",
        *("-e", f"integrator_bundle={bundle}", "-e", f"integrator_fleet_ca_dir={ca}"),
        *("-e", "integrator_drain_timeout=soon"),
    )
    assert proc.returncode != 0
    out = proc.stdout
    assert "Validating arguments against arg spec 'controller'" in out, out[-3000:]
    assert "integrator_drain_timeout" in out and "unable to convert to int" in out, out[-3000:]
    assert not ca.exists()


def test_a_host_variable_of_the_inventory_is_checked_before_anything_is_staged(tmp_path: Path) -> None:
    """a1's `integrator_disk_factor: lots` is seen on a1 only: `reachable`, the first entry point
    on every host, refuses it before the bundle is staged anywhere."""
    bundle, fleet_dir = _bundle(tmp_path), tmp_path / "fleet"
    proc = _run(
        tmp_path,
        "integrator.fleet.rollout",
        *("-e", f"integrator_bundle={bundle}", "-e", f"integrator_fleet_dir={fleet_dir}"),
    )
    assert proc.returncode != 0
    assert "Validating arguments against arg spec 'reachable'" in proc.stdout, proc.stdout[-3000:]
    assert "integrator_disk_factor" in proc.stdout and "unable to convert to int" in proc.stdout
    assert not fleet_dir.exists()


CLEANUP = """---
- name: The cleanup alone, on this machine
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Bundle and service
      ansible.builtin.include_role:
        name: integrator.fleet.integrator
        tasks_from: controller
        public: true
    - name: Cleanup
      ansible.builtin.include_role:
        name: integrator.fleet.integrator
        tasks_from: cleanup
"""


def test_cleanup_keeps_this_runs_bundle_and_other_services_and_is_idempotent(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet_dir.mkdir()
    kept = ["shop-0.2.0.pyz", "shopper-1.0.pyz", "shop.lock", "shop.state.json", "other-0.1.0.pyz"]
    for name in [*kept, "shop-0.1.0.pyz", "shop-0.3.0rc1.pyz"]:
        (fleet_dir / name).write_text(name)
    playbook = tmp_path / "cleanup.yml"
    playbook.write_text(CLEANUP)
    args = ("-e", f"integrator_bundle={_bundle(tmp_path)}", "-e", f"integrator_fleet_dir={fleet_dir}")
    first = _run(tmp_path, str(playbook), *args)
    assert first.returncode == 0, first.stdout[-3000:]
    assert sorted(p.name for p in fleet_dir.iterdir()) == sorted(kept)
    assert "localhost                  : ok=" in first.stdout and "changed=1 " in first.stdout
    again = _run(tmp_path, str(playbook), *args)
    assert again.returncode == 0 and "changed=0 " in again.stdout, again.stdout[-3000:]
    assert sorted(p.name for p in fleet_dir.iterdir()) == sorted(kept)
