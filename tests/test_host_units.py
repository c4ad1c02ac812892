"""systemd and nginx operations, against a recorded fake host."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from integrator.host import units
from integrator.host.facts import UNIT_PROPERTIES
from integrator.host.system import Proc, System


class Recorder(System):
    """Answers `systemctl show` with fixed properties and records every command."""

    def __init__(self, root: Path, show: str, failing: str = "") -> None:
        super().__init__(root)
        self.show = show
        self.failing = failing  # a command line that exits 1, saying so on stderr
        self.ran: list[str] = []

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        line = " ".join(argv)
        self.ran.append(line)
        if line == self.failing:
            return Proc(tuple(argv), 1, "", "emerg: bad config\n")
        out = self.show if list(argv[:2]) == ["systemctl", "show"] else ""
        return Proc(tuple(argv), 0, out, "")


def test_nginx_reload_asks_systemd_about_nginx_once(tmp_path: Path) -> None:
    system = Recorder(tmp_path, "ActiveState=active\nMainPID=0\n")
    units.nginx_reload(system)
    assert [r for r in system.ran if r.startswith("systemctl show")] == [
        f"systemctl show -p {','.join(UNIT_PROPERTIES)} nginx.service"
    ]
    assert "systemctl reload nginx.service" in system.ran


def test_nginx_reload_starts_an_inactive_nginx(tmp_path: Path) -> None:
    system = Recorder(tmp_path, "ActiveState=inactive\nMainPID=0\n")
    units.nginx_reload(system)
    assert system.ran[-1] == "systemctl enable --quiet --now nginx.service"
    assert not any("reload" in r for r in system.ran)


def test_main_pid_is_none_without_a_main_process() -> None:
    assert units.main_pid({"MainPID": "1234"}) == 1234
    assert units.main_pid({"MainPID": "0"}) is None
    assert units.main_pid({}) is None


def test_an_invalid_nginx_config_is_not_reloaded(tmp_path: Path) -> None:
    system = Recorder(tmp_path, "ActiveState=active\nMainPID=0\n", failing="nginx -t -q")
    assert units.reload_nginx_if_valid(system) == "emerg: bad config"
    assert system.ran == ["nginx -t -q"]
    valid = Recorder(tmp_path, "ActiveState=active\nMainPID=0\n")
    assert units.reload_nginx_if_valid(valid) is None
    assert "systemctl reload nginx.service" in valid.ran


def test_child_pids_reads_proc_stat_past_odd_command_names(tmp_path: Path) -> None:
    for pid, stat in (("10", "10 (nginx) S 1 10"), ("11", "11 (nginx: worker) S 10 10"),
                      ("12", "12 (a) b) S 10 10"), ("13", "13 (other) S 1 13")):  # fmt: skip
        (tmp_path / "proc" / pid).mkdir(parents=True)
        (tmp_path / "proc" / pid / "stat").write_text(stat + " 0 0\n")
    (tmp_path / "proc/14").mkdir()  # exited meanwhile: no stat
    assert units.child_pids(System(tmp_path), 10) == {11, 12}
