"""Interruptions during activation (signals, any OSError) restore the files; what a dead deploy
left is found and settled from the facts. Fast: a fake systemd in a temporary root, no host."""

from __future__ import annotations

import errno
import os
import shutil
import signal
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import pytest

from integrator.host import releases
from integrator.host.activate import HostContext, activate
from integrator.host.apply import activation_for
from integrator.host.facts import HostFacts
from integrator.host.fs import FileWriter
from integrator.host.interrupt import Interrupted, hold_signals, interruptible
from integrator.host.releases import DEPLOYING, FAILED, INTERRUPTED, OK, DeployLock, LockNote, ReleaseRecord
from integrator.host.repair import find_interruption, settle, unit_release
from integrator.host.system import System
from integrator.layout import Layout
from integrator.spec import parse_spec
from tests.host_fakes import FakeHost

SPEC = parse_spec({"service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}})
FACTS = HostFacts("debian", "Debian", "h", (1, 22, 1), "/usr/bin/python3", (3, 11, 2), "x86_64", 252, False)
RID = "20260101T000000Z-abcdef12"
OLD_SITE = "# the previous release's site\n"


class FakeSystemd(FakeHost):
    """systemctl and nginx that succeed, with `on(prefix, action)` to act when one is run."""

    def _answer(self, argv: list[str]) -> tuple[str, str, int]:
        return "", "", 0


def host(tmp_path: Path) -> tuple[FakeSystemd, Layout, Path]:
    system = FakeSystemd(tmp_path)
    layout = Layout.for_spec(SPEC, "debian")
    site = system.path(layout.nginx_site)
    site.parent.mkdir(parents=True)
    site.write_text(OLD_SITE)
    return system, layout, site


def activate_with(system: FakeSystemd, layout: Layout) -> Any:
    ctx = HostContext(system, FACTS, SPEC, layout)
    return activate(ctx, FileWriter(system), activation_for(ctx, RID), previous=None)


def raise_(exc: BaseException) -> Callable[[], None]:
    def action() -> None:
        raise exc

    return action


def kill_self(signum: int) -> Callable[[], None]:
    return lambda: os.kill(os.getpid(), signum)


def test_ctrl_c_during_start_restores_every_file(tmp_path: Path) -> None:
    system, layout, site = host(tmp_path)
    system.on("systemctl restart shop-a.service", raise_(KeyboardInterrupt()))
    outcome = activate_with(system, layout)
    assert not outcome.ok and outcome.interrupted == "SIGINT"
    assert site.read_text() == OLD_SITE  # the site came back
    assert not system.path(layout.slot("a").service_unit_path).exists()  # the new unit is gone
    assert "systemctl disable --now --quiet shop-a.service shop-a.socket" in system.ran  # nothing before it


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_restores_and_a_second_one_does_not_cut_the_restore(
    tmp_path: Path, signum: int
) -> None:
    system, layout, site = host(tmp_path)
    system.on("systemctl restart shop-a.service", kill_self(signum))
    system.on("systemctl disable", kill_self(signum))  # during the restore: must be held
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with interruptible():
        outcome = activate_with(system, layout)
        assert hold_signals() == [signal.Signals(signum).name]  # noted, not acted on
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers found are back
    assert not outcome.ok and outcome.interrupted == signal.Signals(signum).name
    assert outcome.signum == signum and outcome.reason == f"interrupted by {signal.Signals(signum).name}"
    assert site.read_text() == OLD_SITE
    assert not system.path(layout.slot("a").service_unit_path).exists()
    disabled = system.ran.index("systemctl disable --now --quiet shop-a.service shop-a.socket")
    assert "nginx -t -q" in system.ran[disabled:]  # the restore went on to its last step


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.ENAMETOOLONG, errno.EIO])
def test_any_os_error_restores_and_names_the_cause(tmp_path: Path, code: int) -> None:
    system, layout, site = host(tmp_path)
    system.on("nginx -t", raise_(OSError(code, os.strerror(code), "/opt/shop/releases/x")))
    outcome = activate_with(system, layout)
    assert not outcome.ok and not outcome.interrupted
    assert outcome.reason == f"{os.strerror(code)} ({errno.errorcode[code]}): /opt/shop/releases/x"
    assert site.read_text() == OLD_SITE


def test_a_bug_still_restores_then_keeps_its_traceback(tmp_path: Path) -> None:
    system, layout, site = host(tmp_path)
    system.on("systemctl restart shop-a.service", raise_(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        activate_with(system, layout)
    assert site.read_text() == OLD_SITE


def test_undo_puts_back_what_it_can_when_one_path_fails(tmp_path: Path) -> None:
    system = System(tmp_path)
    writer = FileWriter(system)
    (tmp_path / "etc/sub").mkdir(parents=True)
    (tmp_path / "etc/a").write_text("old a\n")
    (tmp_path / "etc/sub/b").write_text("old b\n")
    writer.put(PurePosixPath("/etc/a"), "new a\n")
    writer.put(PurePosixPath("/etc/sub/b"), "new b\n")
    shutil.rmtree(tmp_path / "etc/sub")
    (tmp_path / "etc/sub").write_text("a file where a directory was\n")  # b cannot be put back
    writer.undo()
    assert (tmp_path / "etc/a").read_text() == "old a\n"  # restored although b (undone first) failed
    assert len(writer.undo_failures) == 1 and writer.undo_failures[0].startswith("/etc/sub/b: ")


def test_interrupted_is_a_keyboard_interrupt_with_the_signal_name() -> None:
    exc = Interrupted(signal.SIGHUP)
    assert isinstance(exc, KeyboardInterrupt) and exc.name == "SIGHUP"


# --- what a dead deploy left: facts in, decision out --------------------------------------------


def rec(rid: str, outcome: str) -> ReleaseRecord:
    return ReleaseRecord(rid, "2026-01-01T00:00:00Z", "me", "ab" * 32, "1.0", "3.11.2", outcome)


A_B = [rec("a", OK), rec("b", DEPLOYING)]
B = [rec("b", DEPLOYING)]
FIND_CASES = [
    # (what, lock note, held now, records, expected (deploying ids, touched units) or None)
    ("clean history", LockNote(7, "done"), False, [rec("a", OK)], None),
    ("a running deploy is no interruption", LockNote(7, "venv"), True, A_B, None),
    ("killed at its health check", LockNote(7, "health"), False, A_B, (("b",), True)),
    ("killed while unpacking: units untouched", LockNote(7, "unpack"), False, B, (("b",), False)),
    ("a rollback killed at its start: no record", LockNote(7, "start"), False, [rec("a", OK)], ((), True)),
    ("an integrator that kept no steps", LockNote(7, ""), False, B, (("b",), True)),
    ("a restore killed part-way", LockNote(7, "restore"), False, B, (("b",), True)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("note", "held", "records", "expected"), [c[1:] for c in FIND_CASES], ids=[c[0] for c in FIND_CASES]
)
def test_find_interruption(note: LockNote, held: bool, records: list[ReleaseRecord], expected: Any) -> None:
    found = find_interruption(note, records, held)
    assert (None if found is None else (found.deploying, found.touched_units)) == expected


def test_settle_marks_the_dead_release_and_keeps_a_switched_one() -> None:
    found = find_interruption(LockNote(7, "health"), [rec("a", OK), rec("b", DEPLOYING)])
    assert found is not None and found.describe() == "interrupted deploy of b (pid 7 died at step health)"
    settled = settle([rec("a", OK), rec("b", DEPLOYING)], found, current="a", serving=True)
    assert [(r.id, r.outcome) for r in settled] == [("a", OK), ("b", INTERRUPTED)]
    assert "repaired: release a" in settled[1].message
    # It had switched `current` before it died, and serves: it passed its health check.
    switched = settle([rec("a", OK), rec("b", DEPLOYING)], found, current="b", serving=True)
    assert [(r.id, r.outcome) for r in switched] == [("a", OK), ("b", OK)]
    broken = settle([rec("a", OK), rec("b", DEPLOYING)], found, current="b", serving=False)
    assert broken[1].outcome == INTERRUPTED
    assert releases.previous_good(settled, "a") is None and FAILED != INTERRUPTED


def test_unit_release_reads_the_exec_start_path() -> None:
    unit = (
        f"[Service]\nWorkingDirectory=/opt/shop/releases/{RID}/app\n"
        f"ExecStart=/opt/shop/releases/{RID}/venv/bin/gunicorn --config x\n"
    )
    assert unit_release(unit) == RID
    assert unit_release("[Service]\nExecStart=/bin/true\n") is None


def test_a_repair_is_found_by_the_next_lock_holder(tmp_path: Path) -> None:
    system = System(tmp_path)
    layout = Layout.for_spec(SPEC, "debian")
    lock_file = system.path(layout.lock_file)
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text("99 start\n")
    with DeployLock(system, layout) as lock:
        assert find_interruption(lock.left, []) is not None
