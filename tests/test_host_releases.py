"""Release ids, records, cleanup rules and the deploy lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrator.errors import HostError
from integrator.host import releases
from integrator.host.fs import FileWriter
from integrator.host.releases import (
    DEPLOYING,
    FAILED,
    INTERRUPTED,
    OK,
    ROLLED_BACK,
    DeployLock,
    ReleaseRecord,
)
from integrator.host.system import System
from integrator.layout import Layout, profile


def rec(rid: str, outcome: str = OK) -> ReleaseRecord:
    return ReleaseRecord(rid, "2026-01-01T00:00:00Z", "me", "ab" * 32, "1.0", "3.11.2", outcome)


def layout() -> Layout:
    return Layout("shop", profile("debian"))


def test_release_ids_sort_by_time_and_name_the_bundle() -> None:
    a = releases.new_release_id("deadbeef" * 8, now=1_700_000_000)
    b = releases.new_release_id("00000000" * 8, now=1_700_000_001)
    assert a == "20231114T221320Z-deadbeef"
    assert sorted([b, a]) == [a, b]


def test_cleanup_keeps_newest_current_and_last_good() -> None:
    ids = [f"2026010{i}T000000Z-aaaaaaaa" for i in range(1, 8)]
    records = [rec(ids[0], OK)] + [rec(i, FAILED) for i in ids[1:]]
    doomed = releases.to_remove(ids, records, current=ids[0], keep=3)
    assert ids[0] not in doomed  # current and last good
    assert doomed == ids[1:4]  # the newest 3 stay


def test_cleanup_never_deletes_last_good_even_if_not_current() -> None:
    ids = ["a1", "a2", "a3", "a4"]
    records = [rec("a1", OK), rec("a2", FAILED), rec("a3", FAILED), rec("a4", FAILED)]
    assert "a1" not in releases.to_remove(ids, records, current="a4", keep=2)


def test_previous_good_skips_failed_and_newer() -> None:
    records = [rec("a1"), rec("a2", FAILED), rec("a3", ROLLED_BACK), rec("a4"), rec("a5")]
    previous, last = releases.previous_good(records, "a4"), releases.last_good(records)
    assert previous is not None and previous.id == "a3"
    assert releases.previous_good(records, "a1") is None
    assert last is not None and last.id == "a5"


def test_records_round_trip(tmp_path: Path) -> None:
    system = System(tmp_path)
    records = releases.upsert([], rec("a1"))
    records = releases.upsert(records, rec("a2", "deploying"))
    records = releases.set_outcome(records, "a2", FAILED, "health check failed")
    releases.save_records(FileWriter(system), layout(), records)
    loaded = releases.load_records(system, layout())
    assert [(r.id, r.outcome) for r in loaded] == [("a1", OK), ("a2", FAILED)]
    assert loaded[1].message == "health check failed"


def test_unreadable_record_is_a_clear_error(tmp_path: Path) -> None:
    system = System(tmp_path)
    path = system.path(layout().releases_record)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(HostError, match="unreadable release record"):
        releases.load_records(system, layout())


def test_lock_refuses_a_second_deploy(tmp_path: Path) -> None:
    system = System(tmp_path)
    with DeployLock(system, layout()), pytest.raises(HostError, match=r"another deploy of shop is running"):
        DeployLock(system, layout()).__enter__()
    with DeployLock(system, layout()):  # released on exit
        pass


# --- cleanup as a data table: records in, releases to delete out ------------------------------

CLEANUP_CASES = [
    # (what, [(id, outcome)], current, keep, expected doomed)
    ("first deploy", [("a", OK)], "a", 2, []),
    ("the finding: failures push the only rollback target out",
     [("a", OK), ("b", FAILED), ("c", FAILED), ("d", OK)], "d", 2, ["b"]),
    ("failed-only history", [("a", FAILED), ("b", FAILED), ("c", FAILED)], None, 2, ["a"]),
    ("interleaved failures keep `keep` good ones",
     [("a", OK), ("b", FAILED), ("c", OK), ("d", FAILED), ("e", OK), ("f", FAILED), ("g", OK)],
     "g", 3, ["a", "b", "d"]),
    ("rolled_back counts as good, in order",
     [("a", OK), ("b", ROLLED_BACK), ("c", FAILED), ("d", OK)], "d", 2, ["a"]),
    ("interrupted and deploying are not good",
     [("a", OK), ("b", INTERRUPTED), ("c", DEPLOYING), ("d", INTERRUPTED), ("e", OK)], "e", 2, ["b", "c"]),
    ("keep=1 still keeps the rollback target", [("a", OK), ("b", OK), ("c", FAILED), ("d", OK)], "d", 1,
     ["a", "c"]),
    ("a directory without a record is not good", [("a", OK), ("b", ""), ("c", ""), ("d", OK)], "d", 2, ["b"]),
    ("current older than failures (after a rollback)",
     [("a", OK), ("b", OK), ("c", ROLLED_BACK), ("d", FAILED)], "b", 2, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "current", "keep", "doomed"), [c[1:] for c in CLEANUP_CASES], ids=[c[0] for c in CLEANUP_CASES]
)
def test_cleanup_selection(
    rows: list[tuple[str, str]], current: str | None, keep: int, doomed: list[str]
) -> None:
    records = [rec(rid, outcome) for rid, outcome in rows if outcome]
    existing = [rid for rid, _ in rows]
    assert releases.to_remove(existing, records, current, keep) == doomed
    target = releases.previous_good(records, current)
    assert target is None or target.id not in doomed  # rollback always has somewhere to go


# --- the lock names its holder's step -----------------------------------------------------------


def test_lock_records_each_step_and_a_normal_end(tmp_path: Path) -> None:
    system = System(tmp_path)
    lock_file = system.path(layout().lock_file)
    with DeployLock(system, layout()) as lock:
        lock.step("venv")
        assert lock_file.read_text() == f"{os.getpid()} venv\n"
        assert releases.lock_state(system, layout()) == (releases.LockNote(os.getpid(), "venv"), True)
        with pytest.raises(
            HostError, match=rf"another deploy of shop is running \(pid {os.getpid()}, step venv\)"
        ):
            DeployLock(system, layout()).__enter__()
    assert lock_file.read_text() == f"{os.getpid()} done\n"
    assert releases.lock_state(system, layout()) == (releases.LockNote(os.getpid(), "done"), False)


def test_lock_tells_the_next_holder_where_a_dead_one_stopped(tmp_path: Path) -> None:
    system = System(tmp_path)
    lock_file = system.path(layout().lock_file)
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text("4242 health\n")  # a deploy killed at its health check; nobody holds the lock
    assert releases.lock_state(system, layout()) == (releases.LockNote(4242, "health"), False)
    with DeployLock(system, layout()) as lock:
        assert lock.left == releases.LockNote(4242, "health")
    with DeployLock(system, layout()) as lock:
        assert lock.left is None  # the previous holder ended normally
    lock_file.write_text("4242\n")  # an integrator that kept no steps
    with DeployLock(system, layout()) as lock:
        assert lock.left is None


def test_a_signal_leaves_the_step_for_the_next_holder(tmp_path: Path) -> None:
    system = System(tmp_path)
    with pytest.raises(KeyboardInterrupt), DeployLock(system, layout()) as lock:
        lock.step("start")
        raise KeyboardInterrupt
    assert system.path(layout().lock_file).read_text() == f"{os.getpid()} start\n"


def test_proc_locks_parser() -> None:
    text = (
        "1: POSIX  ADVISORY  WRITE 77 00:2e:555 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 88 fd:01:1234 0 EOF\n"
        "3: -> FLOCK  ADVISORY  WRITE 99 fd:01:999 0 EOF\n"
    )
    assert releases.flock_held(text, 1234)
    assert not releases.flock_held(text, 555)  # a POSIX lock, not ours
    assert not releases.flock_held(text, 999)  # only waiting
