"""`integrator new`: the Flask template renders in memory, writes atomically, and its tests pass."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest

from integrator import spec as spec_module
from integrator.cli import main
from integrator.errors import SpecError, TemplateError
from integrator.spec import load_spec
from integrator.spec.declare import tables
from integrator.template.commands import new
from integrator.template.tree import (
    TEMPLATE_DIR,
    new_spec,
    parse_service_toml,
    render_tree,
    substitute,
    title_of,
    write_tree,
)

from .test_bundle import UnixHTTPConnection

EXPECTED_FILES = {
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "service.toml",
    "src/shop/__init__.py",
    "src/shop/requestlog.py",
    "src/shop/secrets.py",
    "src/shop/views.py",
    "tests/conftest.py",
    "tests/test_app.py",
}
BAD_NAMES = ["Shop", "1shop", "shop-x", "nginx", "a" * 40, ""]


def tree_hashes(root: Path) -> dict[str, str]:
    """Every file below root with its sha256: proves a command left a tree alone."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_generated_tests(project: Path) -> subprocess.CompletedProcess[str]:
    """The generated project's own pytest, with this venv's Python and its src/ on the path."""
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- rendering, in memory -----------------------------------------------------------------


def test_render_tree_is_the_whole_project_in_memory() -> None:
    tree = render_tree("shop", "1.2.3")
    assert {str(p) for p in tree} == EXPECTED_FILES
    assert all(isinstance(p, PurePosixPath) and isinstance(c, bytes) for p, c in tree.items())
    for path, content in tree.items():
        assert b"{{" not in content, f"placeholder left in {path}"


def test_rendered_values_land_where_they_belong() -> None:
    tree = render_tree("order_tracker", "1.2.3")
    text = {str(p): c.decode() for p, c in tree.items()}
    assert 'name = "order_tracker"' in text["pyproject.toml"]
    assert 'version = "1.2.3"' in text["pyproject.toml"]
    assert 'dependencies = ["flask>=3.0"]' in text["pyproject.toml"]
    assert 'dev = ["pytest", "gunicorn"]' in text["pyproject.toml"]
    assert '__version__ = "1.2.3"' in text["src/order_tracker/__init__.py"]
    assert 'from_prefixed_env("ORDER_TRACKER")' in text["src/order_tracker/__init__.py"]
    assert 'ENV_PREFIX = "ORDER_TRACKER_SECRET_"' in text["src/order_tracker/secrets.py"]
    assert "x_for=1, x_proto=1, x_host=0, x_port=0" in text["src/order_tracker/requestlog.py"]
    assert text["README.md"].startswith("# Order Tracker\n")
    assert (
        "CREDENTIALS_DIRECTORY" in text["README.md"]
        and "journalctl -u order_tracker.service" in text["README.md"]
    )


def test_generated_python_runs_on_python_3_9() -> None:
    for path, content in render_tree("shop").items():
        if path.suffix == ".py":
            source = content.decode()
            ast.parse(source, filename=str(path), feature_version=(3, 9))
            assert "from __future__ import annotations" in source, path


def test_service_toml_is_valid_and_matches_the_spec() -> None:
    text = render_tree("shop", "0.3.0")[PurePosixPath("service.toml")].decode()
    spec = parse_service_toml(text, source="service.toml")
    assert spec == new_spec("shop", "0.3.0")
    assert spec.entry == "shop:create_app()" and spec.http.health_path == "/healthz"


def test_service_toml_header_names_every_table_and_key_of_the_spec() -> None:
    """The comments come from each table's declaration; this keeps them in step with its keys."""
    text = render_tree("shop")[PurePosixPath("service.toml")].decode()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    for table in tables(spec_module.ServiceSpec):
        assert f"# [{table.name}]" in header, table.name
        for key in table.keys:  # a free table (`[env]`) has no keys of its own
            assert key.free or key.name in text, f"[{table.name}] {key.name}"


def test_unknown_placeholder_is_a_template_bug() -> None:
    with pytest.raises(KeyError, match="unknown placeholder"):
        substitute("{{nmae}}", {"name": "shop"}, where="x")


def test_template_ships_no_hidden_files_or_caches() -> None:
    """Package-data globs skip dotfiles, so the template stores `gitignore` and renders `.gitignore`."""
    shipped = [p for p in TEMPLATE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert shipped and not [p for p in shipped if p.name.startswith(".")]


def test_title_form() -> None:
    assert title_of("shop") == "Shop"
    assert title_of("order_tracker") == "Order Tracker"
    assert title_of("shop2") == "Shop2"


# --- new, through the real CLI ------------------------------------------------------------


def test_new_writes_a_project_whose_own_tests_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "shop"
    assert main(["new", "shop", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"created {dest}/" in out
    assert "python -m pytest" in out and "integrator bundle" in out and "integrator deploy" in out
    assert set(tree_hashes(dest)) == EXPECTED_FILES
    assert load_spec(dest).name == "shop"
    run = run_generated_tests(dest)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "12 passed" in run.stdout


def test_new_defaults_to_a_directory_named_after_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = new("shop")
    assert (tmp_path / "shop" / "service.toml").is_file()
    assert result.data["path"] == "shop" and result.data["entry"] == "shop:create_app()"


def test_new_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "new", "shop", str(tmp_path / "shop")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True and payload["name"] == "shop"
    assert "src/shop/__init__.py" in payload["files"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_name_is_one_line_exit_2_nothing_written(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", bad, str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("integrator: error: ") and err.count("\n") == 1
    assert "[service] name" in err and ("is not valid" in err or "is reserved" in err)
    assert list(tmp_path.iterdir()) == []


def test_bad_name_raises_spec_error() -> None:
    with pytest.raises(SpecError, match="a-z, 0-9 and _"):
        render_tree("shop-x")


def test_existing_directory_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "shop"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")
    before = tree_hashes(tmp_path)
    assert main(["new", "shop", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists and is not empty" in err
    assert tree_hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop"]


def test_an_empty_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    new("shop", tmp_path / "shop")
    assert (tmp_path / "shop" / "src" / "shop" / "views.py").is_file()


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shop").write_text("x")
    with pytest.raises(TemplateError, match="not a directory"):
        new("shop", tmp_path / "shop")


def test_missing_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        new("shop", tmp_path / "no" / "such" / "shop")
    assert list(tmp_path.iterdir()) == []


# --- write_tree: all or nothing -----------------------------------------------------------


def test_write_tree_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    files = {PurePosixPath("a.txt"): b"a", PurePosixPath("../escape.txt"): b"x"}
    with pytest.raises(TemplateError, match="not a relative path"):
        write_tree(files, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_write_tree_rename_failure_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TemplateError, match="No space left"):
        write_tree(render_tree("shop"), tmp_path / "shop")
    assert list(tmp_path.iterdir()) == []


def test_write_tree_keeps_modes(tmp_path: Path) -> None:
    rel = PurePosixPath("bin/run")
    write_tree({rel: b"#!/bin/sh\n"}, tmp_path / "out", modes={rel: 0o755})
    assert (tmp_path / "out" / "bin" / "run").stat().st_mode & 0o777 == 0o755


# --- the generated app under gunicorn, as on a host --------------------------------------


@pytest.mark.slow
def test_generated_app_serves_under_gunicorn(tmp_path: Path) -> None:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed in this venv")
    dest = tmp_path / "shop"
    new("shop", dest)
    sock = tmp_path / "g.sock"
    env = {**os.environ, "PYTHONPATH": str(dest / "src"), "SHOP_GREETING": "from gunicorn"}
    proc = subprocess.Popen(
        [str(gunicorn), "--bind", f"unix:{sock}", "--workers", "1", "--threads", "2", "shop:create_app()"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert sock.exists(), proc.stderr.read() if proc.stderr and proc.poll() is not None else "no socket"
        conn = UnixHTTPConnection(str(sock))
        conn.request("GET", "/healthz", headers={"X-Forwarded-For": "198.51.100.4"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
        conn.request("GET", "/")
        assert json.loads(conn.getresponse().read())["greeting"] == "from gunicorn"
        conn.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    log = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert log[0]["path"] == "/healthz" and log[0]["remote_addr"] == "198.51.100.4"


@pytest.mark.parametrize("name", ["a", "shop", "a" + "b" * 30])
def test_generated_project_is_lint_clean_and_formatted(name: str, tmp_path: Path) -> None:
    """Lint and format as a careful Flask developer would, for the shortest and longest names."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this venv")
    new(name, tmp_path / name)
    common = ["--isolated", "--no-cache", "--target-version", "py39", "--line-length", "110"]
    for argv in (["check", *common, "--select", "E,F,W,I,B,UP,SIM,RUF"], ["format", "--check", *common]):
        run = subprocess.run(
            [str(ruff), *argv, "."], cwd=tmp_path / name, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stdout + run.stderr
