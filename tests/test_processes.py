"""[processes.NAME] workers and [timers.NAME] timers: the spec's rules, their units, the pure plan
of what a switch does to them (tables, no host), and that plan applied on a FakeHost.

On a real host (systemd as PID 1): tests/test_processes_e2e.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from integrator.errors import SpecError, UsageError
from integrator.host import processes, releases
from integrator.host.apply import apply_release
from integrator.host.deploy import decide
from integrator.host.fs import FileWriter
from integrator.host.journal import journal_matches
from integrator.host.processes import ProcessPlan, plan_processes
from integrator.host.release_facts import FileFacts, FileState
from integrator.host.release_plan import plan_result
from integrator.host.repair import repair_interrupted
from integrator.host.status import doctor_local
from integrator.layout import Layout
from integrator.render import render_all
from integrator.render.processes import process_files
from integrator.render.unit_text import exec_args
from integrator.spec import ServiceSpec, parse_spec
from integrator.spec.text import CALENDAR_RE

from .host_fakes import SHA_B, SPEC, FakeHost, bundle, ctx_for, deployed, make_host, secrets_of
from .render_checks import need_tool, run
from .test_host_plan import stub_release

MINIMAL = {"service": {"name": "shop", "version": "1.0", "entry": "shop:app"}}
WORKER = {"worker": {"command": ["python", "-m", "shop.worker"]}}
PRUNE = {"prune": {"command": ["flask", "prune"], "on_calendar": "*:*:0/5"}}
WITH = ServiceSpec.from_dict({**SPEC.to_dict(), "processes": WORKER, "timers": PRUNE})
LAYOUT = Layout.for_spec(SPEC, "debian")
UNITS = PurePosixPath("/etc/systemd/system")


# --- the spec ------------------------------------------------------------------------------------


def _spec(processes: Any = None, timers: Any = None) -> Any:
    return parse_spec({**MINIMAL, "processes": processes or {}, "timers": timers or {}})


def test_processes_and_timers_are_read_sorted_by_name() -> None:
    spec = _spec({"b": {"command": ["x"]}, "a": {"command": ["/usr/bin/y", "z"]}}, PRUNE)
    assert [n for n, _ in spec.processes.named] == ["a", "b"]
    assert spec.timers.named[0][1].on_calendar == "*:*:0/5" and spec.timers.named[0][1].timeout == 3600


BAD: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("a dash", {"a-b": {"command": ["x"]}}, {}, r"\[processes\] 'a-b' must be a name"),
    ("upper case", {"Worker": {"command": ["x"]}}, {}, r"'Worker' must be a name"),
    ("too long", {"w" * 33: {"command": ["x"]}}, {}, r"must be a name"),
    ("too many", {f"w{i}": {"command": ["x"]} for i in range(17)}, {}, r"more than 16 entries"),
    ("no command", {"w": {}}, {}, r"\[processes\.w\] command is required"),
    ("an empty command", {"w": {"command": []}}, {}, r"\[processes\.w\] command is empty"),
    ("a relative program", {"w": {"command": ["../x"]}}, {}, r"plain name or an absolute path"),
    ("a lone ;", {"w": {"command": ["x", ";", "y"]}}, {}, r"lone ';'"),
    ("a control character", {"w": {"command": ["x", "a\rb"]}}, {}, r"control character"),
    ("one name twice", WORKER, {"worker": PRUNE["prune"]}, r"worker is a process's name too"),
    ("a cron line", {}, {"t": {"command": ["x"], "on_calendar": "* * * * *"}}, r"not a calendar event"),
    ("a specifier", {}, {"t": {"command": ["x"], "on_calendar": "%H:00"}}, r"not a calendar event"),
    ("a newline", {}, {"t": {"command": ["x"], "on_calendar": "daily\n"}}, r"control character"),
    ("too long a calendar", {}, {"t": {"command": ["x"], "on_calendar": "0," * 70 + "0:00"}}, r"calendar"),
    ("no calendar", {}, {"t": {"command": ["x"]}}, r"\[timers\.t\] on_calendar is required"),
    ("a zero timeout", {}, {"t": {**PRUNE["prune"], "timeout": 0}}, r"timeout must be between 1 and"),
    ("an unknown key", {"w": {"command": ["x"], "user": "root"}}, {}, r"unknown key \[processes\.w\] user"),
]


@pytest.mark.parametrize(("procs", "timers", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_processes_and_timers_are_refused(procs: Any, timers: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _spec(procs, timers)


CALENDARS = ["*:*:0/5", "daily", "Mon..Fri 09:00", "Sat,Sun 10:00 UTC", "*-*~01 02:00", "*-*-1..7 18:00"]


def test_every_accepted_calendar_example_is_one_systemd_reads() -> None:
    """The build side's pattern is a subset of systemd's syntax: what it accepts, systemd does."""
    analyze = need_tool("systemd-analyze", "apt-get install systemd")
    for cal in CALENDARS:
        assert CALENDAR_RE.fullmatch(cal), cal
        assert run([analyze, "calendar", cal]).returncode == 0, cal


# --- the units ------------------------------------------------------------------------------------

QUOTED = [
    (["/bin/x"], "/bin/x"),
    (["/bin/x", "a b"], '/bin/x "a b"'),
    (["/bin/x", "100%"], '/bin/x "100%%"'),
    (["/bin/x", "$HOME", "${A}"], '/bin/x "$$HOME" "$${A}"'),
    (["/bin/x", 'a"b\\c'], '/bin/x "a\\"b\\\\c"'),
    (["/bin/x", ""], '/bin/x ""'),
    (["/bin/x", "-m", "a.b:c=1,2"], "/bin/x -m a.b:c=1,2"),
]


@pytest.mark.parametrize(("argv", "line"), QUOTED)
def test_exec_args_quote_what_systemd_would_split_or_expand(argv: list[str], line: str) -> None:
    assert exec_args(argv) == line


def test_units_run_current_not_a_release_so_they_are_the_same_for_every_release() -> None:
    one = {f.path: f.content for f in render_all(WITH, LAYOUT, "R1")}
    two = {f.path: f.content for f in render_all(WITH, LAYOUT, "R2")}
    units = dict(process_files(WITH, LAYOUT))
    assert sorted(units) == [UNITS / f"shop-{n}" for n in ("proc-worker.service", "timer-prune.service",
                                                           "timer-prune.timer")]  # fmt: skip
    assert all(one[p] == two[p] == text for p, text in units.items())
    worker = units[UNITS / "shop-proc-worker.service"]
    assert "ExecStart=/opt/shop/current/venv/bin/python -m shop.worker\n" in worker
    assert "\nUser=shop\n" in worker and "LoadCredential=api_key:" in worker
    assert "SyslogIdentifier=shop\n" in worker and "Environment=PATH=/opt/shop/current/venv/bin:" in worker
    timer = units[UNITS / "shop-timer-prune.timer"]
    assert "OnCalendar=*:*:0/5\n" in timer and "Unit=shop-timer-prune.service\n" in timer
    # the web unit is the same with or without them
    assert (
        one[LAYOUT.slot("a").service_unit_path]
        == {f.path: f.content for f in render_all(SPEC, LAYOUT, "R1")}[LAYOUT.slot("a").service_unit_path]
    )


# --- the plan: facts in, units to restart and stop out ---------------------------------------------

OURS = b"# x\n# Rendered by integrator and rewritten on every deploy\n"


def _found(*names: str, content: bytes = OURS) -> FileFacts:
    files = {UNITS / n: FileState("f" * 64, 0o644, 0, 0, content) for n in names}
    files[LAYOUT.slot("a").service_unit_path] = FileState("e" * 64, 0o644, 0, 0, OURS)
    return FileFacts(files, frozenset(), {}, {}, ())


PLANS = [
    ("nothing declared, nothing found", SPEC, _found(), ProcessPlan()),
    (
        "a worker and a timer: restarted, the timer's service is started by the timer",
        WITH,
        _found(),
        ProcessPlan(("shop-proc-worker.service", "shop-timer-prune.timer"), ("shop-proc-worker.service",)),
    ),
    (
        "units the release no longer has: stopped, timers first, then removed",
        SPEC,
        _found("shop-proc-old.service", "shop-timer-t.service", "shop-timer-t.timer"),
        ProcessPlan(
            stop=("shop-timer-t.timer", "shop-proc-old.service", "shop-timer-t.service"),
            remove=tuple(
                (UNITS / n, "f" * 64)
                for n in ("shop-timer-t.timer", "shop-proc-old.service", "shop-timer-t.service")
            ),
        ),
    ),
    (
        "a unit of the same name not rendered by integrator: left alone",
        SPEC,
        _found("shop-proc-old.service", content=b"[Service]\n"),
        ProcessPlan(),
    ),
    (
        "kept units are not stopped",
        WITH,
        _found("shop-proc-worker.service"),
        ProcessPlan(("shop-proc-worker.service", "shop-timer-prune.timer"), ("shop-proc-worker.service",)),
    ),
    (
        "another service's, or a name no process can have: not ours",
        SPEC,
        _found("shop2-proc-old.service", "shop-proc-x.timer", "shop-tls.service"),
        ProcessPlan(),
    ),
]


@pytest.mark.parametrize(("spec", "found", "plan"), [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_plan_processes(spec: Any, found: FileFacts, plan: ProcessPlan) -> None:
    assert plan_processes(spec, LAYOUT, found) == plan


# --- applied on a FakeHost -------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    monkeypatch.setattr(processes, "SETTLE_S", 0.0)
    stub_release(monkeypatch)
    return make_host(tmp_path / "root", monkeypatch)


def _deploy(host: FakeHost, spec: Any, sha: str) -> tuple[Any, Any]:
    ctx, info = ctx_for(host, spec), bundle(spec, sha)
    plan = decide(ctx, info, secrets_of(host))
    host.ran.clear()
    return plan, apply_release(ctx, info, plan, secrets_of(host))


def test_a_deploy_restarts_workers_and_timers_after_the_switch(host: FakeHost) -> None:
    deployed(host)
    seen: list[str] = []
    current = host.path(LAYOUT.current)
    host.on("systemctl restart shop-proc-worker", lambda: seen.append(os.readlink(current)))
    plan, result = _deploy(host, WITH, SHA_B)
    assert result.exit_code == 0, result.lines
    assert seen == [f"releases/{plan.release_id}"]  # restarted once, with current already switched
    assert "systemctl enable --quiet shop-proc-worker.service shop-timer-prune.timer" in host.ran
    assert result.data["processes"] == {
        "restarted": list(plan.processes.restart),
        "stopped": [],
        "failed": [],
    }
    assert any("restart shop-proc-worker.service, shop-timer-prune.timer" in line
               for line in plan_result(plan, LAYOUT).lines)  # fmt: skip


def test_a_deploy_without_them_stops_and_removes_their_units(host: FakeHost) -> None:
    deployed(host, WITH)
    for unit in ("shop-proc-worker.service", "shop-timer-prune.timer"):
        host.active.add(unit)
    plan, result = _deploy(host, SPEC, SHA_B)
    assert result.exit_code == 0, result.lines
    stale = [
        UNITS / n for n in ("shop-proc-worker.service", "shop-timer-prune.service", "shop-timer-prune.timer")
    ]
    assert sorted(c.path for c in plan.changes if c.action == "remove") == sorted(stale)
    assert not any(host.path(p).exists() for p in stale)
    disable = next(r for r in host.ran if r.startswith("systemctl disable --now") and "shop-timer" in r)
    assert disable.split()[-3:] == [
        "shop-timer-prune.timer",
        "shop-proc-worker.service",
        "shop-timer-prune.service",
    ]
    assert host.ran.index(disable) > host.ran.index(
        "systemctl disable --now --quiet shop-a.service shop-a.socket"
    )


def test_a_worker_that_does_not_stay_up_fails_the_command_not_the_release(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed(host)

    class Crash:  # the worker dies while the deploy watches it
        @staticmethod
        def time() -> float:
            return 0.0

        @staticmethod
        def sleep(seconds: float) -> None:
            host.active.discard("shop-proc-worker.service")

    monkeypatch.setattr(processes, "time", Crash)
    plan, result = _deploy(host, WITH, SHA_B)
    assert result.exit_code == 1
    assert result.data["processes"]["failed"] == ["shop-proc-worker.service"]
    assert any("worker shop-proc-worker.service did not stay running" in line for line in result.lines)
    assert os.readlink(host.path(LAYOUT.current)) == f"releases/{plan.release_id}"  # the web release serves


def test_a_repair_after_a_deploy_killed_after_its_switch_restarts_them_on_current(host: FakeHost) -> None:
    """Killed between the switch and the workers' restart: the next run's repair restarts them."""
    deployed(host, WITH)
    new = "20260102T000000Z-bbbbbbbb"
    release = host.path(LAYOUT.release(new))
    (release / "payload").mkdir(parents=True)
    (release / "payload/spec.json").write_text(json.dumps(WITH.to_dict()))
    records = releases.load_records(host, LAYOUT)
    record = releases.ReleaseRecord(
        new, "2026-01-02T00:00:00Z", "me", SHA_B, "1.0", "3.11.2", releases.DEPLOYING
    )
    releases.save_records(FileWriter(host), LAYOUT, releases.upsert(records, record))
    os.remove(host.path(LAYOUT.current))
    os.symlink(f"releases/{new}", host.path(LAYOUT.current))
    host.path(LAYOUT.lock_file).write_text("4242 processes\n")
    host.ran.clear()
    with releases.DeployLock(host, LAYOUT) as lock:
        repair = repair_interrupted(host, LAYOUT, lock)
    assert repair.serving, repair.lines
    assert "systemctl restart shop-proc-worker.service shop-timer-prune.timer" in host.ran


def test_doctor_names_a_worker_or_timer_that_is_not_running(host: FakeHost) -> None:
    deployed(host, WITH)  # the web unit's activation only: the worker and the timer never started
    host.active.add("shop-proc-worker.service")
    problems = doctor_local(host, "shop").data["problems"]
    assert [p for p in problems if "shop-timer" in p or "shop-proc" in p] == [
        "shop-timer-prune.timer is inactive (?) (see `integrator logs shop --process prune`)"
    ]


# --- logs --process X -------------------------------------------------------------------------------


def test_logs_of_one_process_match_its_units_only() -> None:
    assert journal_matches(LAYOUT, "all", "worker") == [
        "_SYSTEMD_UNIT=shop-proc-worker.service",
        "_SYSTEMD_UNIT=shop-timer-worker.service",
        "+",
        "_PID=1",
        "UNIT=shop-proc-worker.service",
        "UNIT=shop-timer-worker.service",
        "UNIT=shop-timer-worker.timer",
    ]
    for process, source, message in (("a-b", "all", "not a process"), ("w", "nginx", "leave out --source")):
        with pytest.raises(UsageError, match=message):
            journal_matches(LAYOUT, source, process)
