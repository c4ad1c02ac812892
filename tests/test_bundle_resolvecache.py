"""The per-target resolution cache (bundle/resolvecache.py): what its key holds, age, tampering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrator.bundle import resolvecache
from integrator.bundle.targets import TargetSpec
from tests.test_bundle_walk import wheel

T39, T311 = TargetSpec("3.9", "x86_64"), TargetSpec("3.11", "x86_64")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INTEGRATOR_CACHE_DIR", str(tmp_path / "cache"))
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    return tmp_path / "cache"


def test_the_key_is_the_apps_metadata_not_its_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    app = wheel(tmp_path / "a", "app", "1.0", ("flask>=3",))
    same_deps = wheel(tmp_path / "b", "app", "1.0", ("flask>=3",))  # other code, same metadata
    other_deps = wheel(tmp_path / "c", "app", "1.0", ("flask>=3", "requests"))
    key = resolvecache.resolution_key(T39, app, None, ["gunicorn"], "25.0")
    assert key == resolvecache.resolution_key(T39, same_deps, None, ["gunicorn"], "25.0")
    others = {
        resolvecache.resolution_key(T311, app, None, ["gunicorn"], "25.0"),
        resolvecache.resolution_key(T39, other_deps, None, ["gunicorn"], "25.0"),
        resolvecache.resolution_key(T39, app, None, ["gunicorn"], "25.1"),
        resolvecache.resolution_key(T39, app, None, [], "25.0"),
    }
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    others.add(resolvecache.resolution_key(T39, app, None, ["gunicorn"], "25.0"))
    assert key not in others and len(others) == 5


def test_a_stored_resolution_comes_back_within_its_age_only_and_unchanged(
    tmp_path: Path, cache: Path
) -> None:
    (tmp_path / "w").mkdir()
    deps = [wheel(tmp_path / "w", "flask", "3.1"), wheel(tmp_path / "w", "click", "8.1")]
    resolvecache.store("k", deps, now=1000.0)
    got = resolvecache.lookup("k", tmp_path / "d1", now=1000.0 + resolvecache.MAX_AGE)
    assert got is not None and sorted(p.name for p in got) == sorted(p.name for p in deps)
    assert all(p.read_bytes() == (tmp_path / "w" / p.name).read_bytes() for p in got)
    assert resolvecache.lookup("k", tmp_path / "d2", now=1001.0 + resolvecache.MAX_AGE) is None
    assert resolvecache.lookup("other", tmp_path / "d3", now=1000.0) is None
    stored = next((cache / "wheels").glob("*/flask-3.1-py3-none-any.whl"))
    stored.write_bytes(b"changed")
    assert resolvecache.lookup("k", tmp_path / "d4", now=1000.0) is None and not (tmp_path / "d4").exists()


def test_off_resolves_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGRATOR_CACHE_DIR", "off")
    (tmp_path / "w").mkdir()
    resolvecache.store("k", [wheel(tmp_path / "w", "flask", "3.1")])
    assert resolvecache.lookup("k", tmp_path / "d") is None


def test_the_app_wheel_is_reused_for_the_same_tree_only(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg/__init__.py").write_text("A = 1\n")
    key = resolvecache.app_wheel_key(tree, 315532800, "25.0")
    assert key != resolvecache.app_wheel_key(tree, 315532801, "25.0")  # another source time
    built = wheel(tmp_path, "pkg", "1.0")
    resolvecache.store_app_wheel(key, built)
    again = resolvecache.cached_app_wheel(key, tmp_path / "out")
    assert again is not None and again.read_bytes() == built.read_bytes()
    later = built.stat().st_mtime + resolvecache.MAX_AGE + 1
    assert resolvecache.cached_app_wheel(key, tmp_path / "out2", now=later) is None
    (tree / "pkg/__init__.py").write_text("A = 2\n")
    assert (
        resolvecache.cached_app_wheel(resolvecache.app_wheel_key(tree, 315532800, "25.0"), tmp_path / "o")
        is None
    )
