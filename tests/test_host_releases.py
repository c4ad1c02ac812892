"""Release ids, records, cleanup rules and the deploy lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.errors import HostError
from integrator.host import releases
from integrator.host.fs import FileWriter
from integrator.host.releases import FAILED, OK, ROLLED_BACK, DeployLock, ReleaseRecord
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
    assert releases.previous_good(records, "a4").id == "a3"  # type: ignore[union-attr]
    assert releases.previous_good(records, "a1") is None
    assert releases.last_good(records).id == "a5"  # type: ignore[union-attr]


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
