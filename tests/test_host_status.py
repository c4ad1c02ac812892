"""Which services `status`, `list` and `doctor` look at, read from a host below a temporary root."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.errors import HostError
from integrator.host.status import managed_services, selected_services
from integrator.host.system import System


def _host(root: Path, os_release: str, deployed: list[str], records_only: list[str]) -> System:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    for name in deployed + records_only:
        (root / "var/lib/integrator" / name).mkdir(parents=True)
    for name in deployed:
        (root / "opt" / name / "releases").mkdir(parents=True)
    return System(root)


def test_managed_services_have_a_record_and_a_release_tree(tmp_path: Path) -> None:
    system = _host(tmp_path, "ID=rocky\nID_LIKE=rhel\n", ["shop", "blog"], ["gone"])
    layouts = managed_services(system)
    assert [layout.name for layout in layouts] == ["blog", "shop"]
    assert {layout.profile.name for layout in layouts} == {"rhel"}
    assert [layout.name for layout in selected_services(system, "shop")] == ["shop"]
    with pytest.raises(HostError, match="gone is not deployed on this host"):
        selected_services(system, "gone")


def test_no_services_needs_no_distro(tmp_path: Path) -> None:
    assert managed_services(System(tmp_path)) == []
    (tmp_path / "var/lib/integrator").mkdir(parents=True)
    assert managed_services(System(tmp_path)) == []  # no /etc/os-release: nothing asked it
