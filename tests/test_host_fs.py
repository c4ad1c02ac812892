"""FileWriter: compare-then-write, atomic replace, dry runs and undo, in a temporary root."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from integrator.host.fs import CHANGE, CREATE, REMOVE, UNCHANGED, FileWriter
from integrator.host.system import System

P = PurePosixPath


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_then_unchanged_then_change_with_diff(tmp_path: Path) -> None:
    w = FileWriter(System(tmp_path))
    first = w.put(P("/etc/x/a.conf"), "one\n", 0o640)
    assert first.action == CREATE and "+one" in first.diff
    assert (tmp_path / "etc/x/a.conf").read_text() == "one\n"
    assert _mode(tmp_path / "etc/x/a.conf") == 0o640
    assert w.put(P("/etc/x/a.conf"), "one\n", 0o640).action == UNCHANGED
    changed = w.put(P("/etc/x/a.conf"), "two\n", 0o640)
    assert changed.action == CHANGE and "-one" in changed.diff and "+two" in changed.diff


def test_mode_change_alone_is_a_change(tmp_path: Path) -> None:
    w = FileWriter(System(tmp_path))
    w.put(P("/f"), "x", 0o644)
    assert w.put(P("/f"), "x", 0o600).action == CHANGE
    assert _mode(tmp_path / "f") == 0o600


def test_secret_content_never_in_a_diff(tmp_path: Path) -> None:
    change = FileWriter(System(tmp_path)).put(P("/etc/s/key"), "hunter2", 0o600, secret=True)
    assert change.action == CREATE and change.diff == ""


def test_dry_run_reports_and_writes_nothing(tmp_path: Path) -> None:
    w = FileWriter(System(tmp_path), dry_run=True)
    assert w.put(P("/a/b/c"), "x").action == CREATE
    assert w.ensure_dir(P("/a/d")).action == CREATE
    assert not (tmp_path / "a").exists()
    assert w.journal == []


def test_undo_restores_previous_content_and_removes_created(tmp_path: Path) -> None:
    system = System(tmp_path)
    FileWriter(system).put(P("/etc/old.conf"), "old\n", 0o600)
    w = FileWriter(system)
    w.put(P("/etc/old.conf"), "new\n", 0o644)
    w.put(P("/etc/new/new.conf"), "fresh\n")
    w.remove(P("/etc/old.conf"))
    touched = w.undo()
    assert (tmp_path / "etc/old.conf").read_text() == "old\n"
    assert _mode(tmp_path / "etc/old.conf") == 0o600
    assert not (tmp_path / "etc/new").exists()  # created dir, empty again: removed
    assert P("/etc/new/new.conf") in touched


def test_remove_reports(tmp_path: Path) -> None:
    w = FileWriter(System(tmp_path))
    assert w.remove(P("/nothing")).action == UNCHANGED
    w.put(P("/f"), "x")
    assert w.remove(P("/f")).action == REMOVE
    assert not (tmp_path / "f").exists()


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    w = FileWriter(System(tmp_path))
    for i in range(3):
        w.put(P("/d/f"), f"{i}\n")
    assert os.listdir(tmp_path / "d") == ["f"]


def test_a_link_is_replaced_whole_and_undo_points_it_back(tmp_path: Path) -> None:
    system = System(tmp_path)
    link = PurePosixPath("/opt/shop/serving.sock")
    first = FileWriter(system)
    assert first.put_link(link, "/run/shop/gunicorn-a.sock").action == "create"
    assert FileWriter(system).put_link(link, "/run/shop/gunicorn-a.sock").action == "unchanged"
    second = FileWriter(system)
    assert second.put_link(link, "/run/shop/gunicorn-b.sock").action == "change"
    assert os.readlink(system.path(link)) == "/run/shop/gunicorn-b.sock"
    assert [p.name for p in system.path(link.parent).iterdir()] == ["serving.sock"]  # no temporary left
    assert second.written() == {link}
    second.undo()
    assert os.readlink(system.path(link)) == "/run/shop/gunicorn-a.sock"
    first.undo()
    assert not system.path(link).is_symlink()
    assert not system.path(link.parent).exists()  # made by the first writer, empty again: removed
