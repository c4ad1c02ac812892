"""Venvs shared by releases of one lock (host/venvs.py): the choice as a table, then real venvs
built below a fake host's root (the installer and `python3 -m venv` run for real)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from integrator.bundle.manifest import WHEELHOUSE, InstallTarget, Manifest
from integrator.host import venvs
from integrator.host.bundleio import BundleInfo
from integrator.host.fs import remove_tree
from integrator.host.venvs import VenvChoice, VenvDir, choose_venv, venv_key
from tests.host_fakes import SPEC, FakeHost, ctx_for, make_host
from tests.test_wheelinstall import make_wheel

K = "py3.11-0123456789abcdef"
LOCK = "payload/locks/cp311-x86_64.txt"


@pytest.mark.parametrize(
    ("found", "referenced", "expected"),
    [
        ([], set(), VenvChoice(None, K)),
        ([VenvDir(K, True, True)], set(), VenvChoice(K, None)),
        ([VenvDir(K, True, True)], {K}, VenvChoice(K, None)),  # shared with a serving release
        ([VenvDir(K, False, True)], set(), VenvChoice(None, K, (K,))),  # half-built by a killed deploy
        ([VenvDir(K, False, True)], {K}, VenvChoice(None, f"{K}.2")),  # never rebuilt under a release
        ([VenvDir(K, True, False)], {K}, VenvChoice(None, f"{K}.2")),  # the host's Python changed
        ([VenvDir(K, True, False), VenvDir(f"{K}.2", True, True)], {K}, VenvChoice(f"{K}.2", None)),
        ([VenvDir(f"{K}.3", True, True), VenvDir(f"{K}.2", True, True)], set(), VenvChoice(f"{K}.2", None)),
        (
            [VenvDir(K, True, False), VenvDir(f"{K}.2", False, True)],
            {K},
            VenvChoice(None, f"{K}.2", (f"{K}.2",)),
        ),
        ([VenvDir("py3.11-ffffffffffffffff", True, True)], set(), VenvChoice(None, K)),  # another lock's
    ],
)
def test_choose_venv(found: list[VenvDir], referenced: set[str], expected: VenvChoice) -> None:
    assert choose_venv(K, found, referenced) == expected


def test_the_key_is_the_interpreter_and_the_set_of_wheels() -> None:
    base = venv_key("/usr/bin/python3", "3.11", "x86_64", ["a" * 64, "b" * 64])
    assert base == venv_key("/usr/bin/python3", "3.11", "x86_64", ["b" * 64, "a" * 64])
    assert base.startswith("py3.11-") and len(base) == len("py3.11-") + 16
    others = [
        venv_key("/usr/bin/python3", "3.12", "x86_64", ["a" * 64, "b" * 64]),
        venv_key("/usr/local/bin/python3", "3.11", "x86_64", ["a" * 64, "b" * 64]),
        venv_key("/usr/bin/python3", "3.11", "aarch64", ["a" * 64, "b" * 64]),
        venv_key("/usr/bin/python3", "3.11", "x86_64", ["a" * 64, "c" * 64]),
        venv_key("/usr/bin/python3", "3.11", "x86_64", ["a" * 64]),
    ]
    assert len({base, *others}) == 6


def test_unused_venvs() -> None:
    assert venvs.unused(["a", "b", "c"], {"b"}) == ["a", "c"]
    assert venvs.unused([], {"b"}) == []


# --- real venvs below a fake host ---------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    return make_host(tmp_path / "root", monkeypatch)


def release(host: FakeHost, rid: str, value: str) -> BundleInfo:
    """releases/<rid> with a wheelhouse of one app wheel (its code: `value`) and its lock."""
    layout = ctx_for(host).layout
    root = host.path(layout.release(rid))
    (root / WHEELHOUSE).mkdir(parents=True)
    (root / "payload/locks").mkdir(parents=True)
    entry = "[console_scripts]\nshop-value = shop:main\n"
    code = f"def main():\n    print({value!r})\n".encode()
    wheel = make_wheel(root / WHEELHOUSE, "shop", {"shop/__init__.py": code}, entry_points=entry)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / LOCK).write_text(f"shop==1.0 --hash=sha256:{digest}\n")
    target = InstallTarget("3.11", "x86_64", "manylinux_2_28_x86_64", None, LOCK)
    manifest = Manifest("shop", "1.0", None, False, "2026-01-01T00:00:00Z", "test", wheel.name,
                        SPEC.to_dict(), (target,), {})  # fmt: skip
    return BundleInfo(Path("/nowhere/shop.pyz"), "a" * 64, SPEC, manifest)


def run_value(host: FakeHost, rid: str) -> str:
    script = host.path(ctx_for(host).layout.venv(rid) / "bin/shop-value")
    return subprocess.run([script], capture_output=True, text=True, check=True).stdout.strip()


def test_a_release_of_the_same_lock_reuses_the_venv_and_cleanup_keeps_what_is_linked(host: FakeHost) -> None:
    ctx = ctx_for(host)
    layout, facts = ctx.layout, ctx.facts
    first = venvs.ensure_venv(host, release(host, "r1", "one"), layout, "r1", facts)
    assert not first.reused and run_value(host, "r1") == "one"
    built = host.path(layout.shared_venv(first.name))
    assert os.readlink(host.path(layout.venv("r1"))) == f"../../venvs/{first.name}"
    gunicorn_like = (built / "bin/shop-value").read_text().splitlines()[0]
    assert gunicorn_like == f"#!{built}/bin/python"  # the path it stays at, not the release's
    marker_time = (built / venvs.MARKER).stat().st_mtime_ns

    second = venvs.ensure_venv(host, release(host, "r2", "one"), layout, "r2", facts)
    assert second.reused and second.name == first.name
    assert (built / venvs.MARKER).stat().st_mtime_ns == marker_time  # not built again
    third = venvs.ensure_venv(host, release(host, "r3", "three"), layout, "r3", facts)
    assert not third.reused and third.name != first.name and run_value(host, "r3") == "three"

    remove_tree(host, layout.release("r1"))
    assert venvs.remove_unused(host, layout) == []  # r2 still links to it
    assert run_value(host, "r2") == "one"
    remove_tree(host, layout.release("r2"))
    assert venvs.remove_unused(host, layout) == [first.name]
    assert not built.exists() and run_value(host, "r3") == "three"


def test_a_half_built_venv_is_never_reused(host: FakeHost) -> None:
    ctx = ctx_for(host)
    info = release(host, "r1", "one")
    first = venvs.ensure_venv(host, info, ctx.layout, "r1", ctx.facts)
    built = host.path(ctx.layout.shared_venv(first.name))
    remove_tree(host, ctx.layout.venv("r1"))  # as a failed deploy does: the release keeps no venv
    (built / venvs.MARKER).unlink()  # as if killed before it was complete
    (built / "bin/shop-value").unlink()
    again = venvs.ensure_venv(host, info, ctx.layout, "r1", ctx.facts)
    assert not again.reused and again.name == first.name and run_value(host, "r1") == "one"


def test_a_venv_the_host_python_outgrew_is_replaced_beside_the_one_in_use(host: FakeHost) -> None:
    ctx = ctx_for(host)
    first = venvs.ensure_venv(host, release(host, "r1", "one"), ctx.layout, "r1", ctx.facts)
    cfg = host.path(ctx.layout.shared_venv(first.name) / "pyvenv.cfg")
    cfg.write_text(cfg.read_text().replace("version = 3.", "version = 2."))
    second = venvs.ensure_venv(host, release(host, "r2", "one"), ctx.layout, "r2", ctx.facts)
    assert not second.reused and second.name == f"{first.name}.2"
    assert cfg.exists() and run_value(host, "r2") == "one"  # r1's venv untouched while it links to it


def test_a_release_with_its_own_venv_from_before_is_linked_on_rebuild(host: FakeHost) -> None:
    ctx = ctx_for(host)
    info = release(host, "r1", "one")
    own = host.path(ctx.layout.venv("r1"))
    (own / "bin").mkdir(parents=True)
    assert venvs.predates_sharing(host, ctx.layout, "r1") is not None
    venvs.ensure_venv(host, info, ctx.layout, "r1", ctx.facts)
    assert own.is_symlink() and venvs.predates_sharing(host, ctx.layout, "r1") is None
