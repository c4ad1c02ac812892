"""SELinux labels on the host: added once, modified when different, removed on purge.

No SELinux kernel here: a System below a temporary root records the commands it would run
and answers `semanage fcontext -l -C` like a RHEL host would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from integrator.errors import EnvironmentProblem
from integrator.host.selinux import (
    apply_labels,
    missing_labels,
    parse_local_rules,
    remove_labels,
    selinux_mode,
)
from integrator.host.system import Proc, System
from integrator.layout import Layout
from integrator.spec import parse_spec

SPEC = parse_spec({"service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}})
LAYOUT = Layout.for_spec(SPEC, "rhel")
LOCAL_LIST = """\
/opt/shop/venvs/[^/]+/bin(/.*)?           all files          system_u:object_r:bin_t:s0
/run/shop(/.*)?                                    all files          system_u:object_r:var_run_t:s0
"""


class RecordingSystem(System):
    def __init__(self, root: Path, local_rules: str = "", semanage: bool = True) -> None:
        super().__init__(root)
        self.ran: list[list[str]] = []
        self.local_rules = local_rules
        self.semanage = semanage

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        if argv[0] == "semanage" and not self.semanage:
            raise EnvironmentProblem("semanage: not found on this host (install it first)")
        self.ran.append(list(argv))
        out = self.local_rules if list(argv[:4]) == ["semanage", "fcontext", "-l", "-C"] else ""
        return Proc(tuple(argv), 0, out, "")


def enable_selinux(root: Path) -> None:
    (root / "sys/fs/selinux").mkdir(parents=True)
    (root / "sys/fs/selinux/enforce").write_text("0")  # permissive: labels still applied


def test_nothing_runs_without_selinux(tmp_path: Path) -> None:
    system = RecordingSystem(tmp_path)
    assert apply_labels(system, SPEC, LAYOUT) == []
    assert remove_labels(system, LAYOUT) == []
    assert system.ran == []


def test_missing_rules_are_added_different_ones_modified_equal_ones_kept(tmp_path: Path) -> None:
    enable_selinux(tmp_path)
    (tmp_path / "opt/shop/venvs").mkdir(parents=True)
    system = RecordingSystem(tmp_path, LOCAL_LIST)
    apply_labels(system, SPEC, LAYOUT)
    semanage = [argv for argv in system.ran if argv[:2] == ["semanage", "fcontext"] and argv[2] != "-l"]
    assert ["semanage", "fcontext", "-m", "-t", "httpd_var_run_t", "/run/shop(/.*)?"] in semanage
    assert ["semanage", "fcontext", "-a", "-t", "cert_t", "/etc/integrator/shop/tls(/.*)?"] in semanage
    assert not any("bin_t" in argv for argv in semanage)  # already right
    # restorecon only where the directory exists (systemd labels /run/shop when it creates it)
    assert [argv for argv in system.ran if argv[0] == "restorecon"] == [
        ["restorecon", "-R", "/opt/shop/venvs"]
    ]


def test_missing_semanage_names_the_package(tmp_path: Path) -> None:
    enable_selinux(tmp_path)
    with pytest.raises(EnvironmentProblem, match="install policycoreutils-python-utils"):
        apply_labels(RecordingSystem(tmp_path, semanage=False), SPEC, LAYOUT)


def test_purge_removes_only_this_services_rules(tmp_path: Path) -> None:
    enable_selinux(tmp_path)
    other = "/run/other(/.*)?    all files    system_u:object_r:httpd_var_run_t:s0\n"
    system = RecordingSystem(tmp_path, LOCAL_LIST + other)
    removed = remove_labels(system, LAYOUT)
    deletes = [argv for argv in system.ran if argv[2:3] == ["-d"]]
    assert sorted(d[3] for d in deletes) == ["/opt/shop/venvs/[^/]+/bin(/.*)?", "/run/shop(/.*)?"]
    assert len(removed) == 2


def test_parse_local_rules() -> None:
    assert parse_local_rules(LOCAL_LIST) == {
        "/opt/shop/venvs/[^/]+/bin(/.*)?": "bin_t",
        "/run/shop(/.*)?": "var_run_t",
    }
    assert parse_local_rules("SELinux fcontext  type  Context\n\n") == {}


def test_mode_and_missing_labels_for_doctor(tmp_path: Path) -> None:
    assert selinux_mode(RecordingSystem(tmp_path)) == "off"
    assert missing_labels(RecordingSystem(tmp_path), SPEC, LAYOUT) == []
    enable_selinux(tmp_path)
    assert selinux_mode(RecordingSystem(tmp_path)) == "permissive"
    (tmp_path / "sys/fs/selinux/enforce").write_text("1\n")
    system = RecordingSystem(tmp_path, LOCAL_LIST)
    assert selinux_mode(system) == "enforcing"
    missing = missing_labels(system, SPEC, LAYOUT)
    assert [m.split(" should be ")[0] for m in missing] == [
        "SELinux: /run/shop(/.*)?",  # defined, but var_run_t instead of httpd_var_run_t
        "SELinux: /etc/integrator/shop/tls(/.*)?",  # not defined at all
    ]
