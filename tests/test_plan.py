"""`plan` compares rendered files with a root and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrator.cli import main
from integrator.spec import dump_spec_toml, parse_spec


@pytest.fixture()
def service(tmp_path: Path) -> Path:
    spec = parse_spec({"service": {"name": "shop", "version": "1.0", "entry": "shop:create_app()"}})
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "service.toml").write_text(dump_spec_toml(spec))
    return tmp_path / "svc"


def _plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["--json", "plan", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_plan_on_an_empty_host_creates_every_file_and_writes_nothing(
    service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    plan = _plan(capsys, str(service), "--root", str(root))
    actions = {f["path"]: f["action"] for f in plan["files"]}
    assert set(actions.values()) == {"create"}
    assert "/etc/systemd/system/shop-a.service" in actions
    assert "/etc/nginx/conf.d/shop.conf" in actions
    assert plan["changed"] is True
    assert _tree(root) == []


def test_plan_after_render_is_unchanged_and_shows_a_diff_when_the_spec_changes(
    service: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    assert main(["render", str(service), "--out", str(root), "--release", "next"]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    plan = _plan(capsys, str(service), "--root", str(root))
    assert {f["action"] for f in plan["files"]} == {"unchanged"}
    assert plan["changed"] is False

    toml = (service / "service.toml").read_text()
    assert "workers = 2\n" in toml
    (service / "service.toml").write_text(toml.replace("workers = 2\n", "workers = 3\n"))
    plan = _plan(capsys, str(service), "--root", str(root))
    changed = [f for f in plan["files"] if f["action"] == "change"]
    assert [f["path"] for f in changed] == ["/opt/shop/releases/next/gunicorn.conf.py"]
    assert "-workers = 2" in changed[0]["diff"] and "+workers = 3" in changed[0]["diff"]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_plan_refuses_what_is_not_a_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert main(["plan", str(tmp_path / "notes.txt")]) == 2
    assert "not a service directory" in capsys.readouterr().err
