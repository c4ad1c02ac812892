"""`integrator clone`: a copy renamed everywhere, whose own tests still pass."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from integrator.cli import main
from integrator.errors import SpecError, TemplateError
from integrator.layout import Layout
from integrator.spec import load_spec
from integrator.template.commands import clone, new
from integrator.template.rename import Renamer

from .test_template import run_generated_tests, tree_hashes

OLD_TOKEN = re.compile(r"(?<![A-Za-z0-9_])(shop|Shop|SHOP)(?![A-Za-z0-9])")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A freshly generated service, in a directory whose name is not the service's name."""
    src = tmp_path / "the-shop-repo"
    new("shop", src)
    return src


def text_files(root: Path) -> dict[Path, str]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            try:
                found[path] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return found


def test_clone_renames_everything_and_its_tests_pass(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_hashes(shop)
    dest = tmp_path / "shop2"
    assert main(["clone", str(shop), "shop2", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "cloned shop" in out and "as shop2" in out

    assert (dest / "src" / "shop2" / "__init__.py").is_file() and not (dest / "src" / "shop").exists()
    leftovers = [
        f"{path.relative_to(dest)}:{n}: {line}"
        for path, text in text_files(dest).items()
        for n, line in enumerate(text.splitlines(), 1)
        if OLD_TOKEN.search(line)
    ]
    assert leftovers == []
    assert not any(OLD_TOKEN.search(part) for p in dest.rglob("*") for part in p.relative_to(dest).parts)

    spec = load_spec(dest)
    assert spec.name == "shop2" and spec.entry == "shop2:create_app()"
    old, new_ = Layout.for_spec(load_spec(shop)), Layout.for_spec(spec)
    for attr in ("nginx_site", "user", "root", "credentials_dir"):
        assert getattr(old, attr) != getattr(new_, attr), attr
    for old_slot, new_slot in zip(old.all_slots, new_.all_slots):  # NAME-a, NAME-b and the legacy pair
        for attr in ("service_unit", "socket_unit", "socket_path"):
            assert getattr(old_slot, attr) != getattr(new_slot, attr), (old_slot.name, attr)

    run = run_generated_tests(dest)
    assert run.returncode == 0, run.stdout + run.stderr
    assert tree_hashes(shop) == before  # the original is untouched


def test_clone_renames_env_prefix_title_and_docs(shop: Path, tmp_path: Path) -> None:
    clone(shop, "shop2", tmp_path / "shop2")
    init = (tmp_path / "shop2" / "src" / "shop2" / "__init__.py").read_text()
    assert 'from_prefixed_env("SHOP2")' in init and "Hello from Shop2" in init
    assert 'ENV_PREFIX = "SHOP2_SECRET_"' in (tmp_path / "shop2" / "src" / "shop2" / "secrets.py").read_text()
    readme = (tmp_path / "shop2" / "README.md").read_text()
    assert (
        readme.startswith("# Shop2\n")
        and "SHOP2_GREETING" in readme
        and "journalctl -u shop2.service" in readme
    )
    assert 'name = "shop2"' in (tmp_path / "shop2" / "pyproject.toml").read_text()


def test_clone_leaves_out_build_products_keeps_the_rest(shop: Path, tmp_path: Path) -> None:
    for junk in (".venv/bin/python", "src/shop/__pycache__/views.cpython-311.pyc", "dist/shop-0.1.0.pyz"):
        (shop / junk).parent.mkdir(parents=True, exist_ok=True)
        (shop / junk).write_bytes(b"junk")
    for junk in ("build/lib/x", "src/shop.egg-info/PKG-INFO", ".pytest_cache/v", "stray.pyc"):
        (shop / junk).parent.mkdir(parents=True, exist_ok=True)
        (shop / junk).write_bytes(b"junk")
    (shop / ".git").mkdir()
    (shop / ".git" / "config").write_text('[remote "origin"]\n\turl = git@example.com:me/shop.git\n')
    (shop / "docs").mkdir()
    (shop / "docs" / "ops.md").write_text("Restart shop with `systemctl restart shop`.\n")
    (shop / "logo.bin").write_bytes(b"\x89PNG\0shop\0")
    (shop / "run.sh").write_text("#!/bin/sh\nexec gunicorn 'shop:create_app()'\n")
    (shop / "run.sh").chmod(0o755)

    result = clone(shop, "shop2", tmp_path / "shop2")
    dest = tmp_path / "shop2"
    for gone in (".venv", "dist", "build", ".pytest_cache", "src/shop2/__pycache__", "stray.pyc"):
        assert not (dest / gone).exists(), gone
    assert not list(dest.rglob("*.egg-info"))
    assert (dest / ".git" / "config").read_text().endswith("me/shop.git\n")  # history: copied verbatim
    assert (dest / "docs" / "ops.md").read_text() == "Restart shop2 with `systemctl restart shop2`.\n"
    assert (dest / "logo.bin").read_bytes() == b"\x89PNG\0shop\0"  # binary: unchanged
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o755
    assert "shop2:create_app()" in (dest / "run.sh").read_text()
    assert {".venv", "__pycache__", "dist", "*.egg-info"} <= set(result.data["left_out"])
    assert any(".git" in w for w in result.warnings)


def test_clone_reads_the_old_name_from_service_toml(shop: Path, tmp_path: Path) -> None:
    """The source directory is `the-shop-repo`; only the spec says the service is `shop`."""
    result = clone(shop, "billing", tmp_path / "billing")
    assert result.data["from"] == "shop"
    assert (tmp_path / "billing" / "src" / "billing" / "views.py").is_file()
    assert run_generated_tests(tmp_path / "billing").returncode == 0


def test_clone_renames_server_names_that_contain_the_name(shop: Path, tmp_path: Path) -> None:
    spec = shop / "service.toml"
    spec.write_text(spec.read_text().replace("server_names = []", 'server_names = ["shop.example.com"]'))
    clone(shop, "shop2", tmp_path / "shop2")
    assert load_spec(tmp_path / "shop2").http.server_names == ("shop2.example.com",)


def test_clone_warns_when_server_names_stay_the_same(shop: Path, tmp_path: Path) -> None:
    spec = shop / "service.toml"
    spec.write_text(spec.read_text().replace("server_names = []", 'server_names = ["store.example.com"]'))
    result = clone(shop, "shop2", tmp_path / "shop2")
    assert any("store.example.com" in w for w in result.warnings)


def test_source_without_service_toml_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").mkdir()
    assert main(["clone", str(tmp_path / "plain"), "shop2", str(tmp_path / "shop2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no service.toml" in err and "integrator init" in err
    assert not (tmp_path / "shop2").exists()


def test_existing_destination_is_refused_and_untouched(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "shop2"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    before = tree_hashes(dest)
    assert main(["clone", str(shop), "shop2", str(dest)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert tree_hashes(dest) == before


@pytest.mark.parametrize("bad", ["Shop2", "2shop", "shop-2", "nginx", "s" * 40])
def test_bad_new_name_is_refused_before_anything_is_written(shop: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(SpecError, match=r"\[service\] name"):
        clone(shop, bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_same_name_and_destination_inside_source_are_refused(shop: Path) -> None:
    with pytest.raises(TemplateError, match="already called"):
        clone(shop, "shop", shop.parent / "again")
    with pytest.raises(TemplateError, match="inside"):
        clone(shop, "shop2", shop / "shop2")


# --- the renamer: tokens, not free text --------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("from shop import create_app", "from shop2 import create_app"),
        ("from shop.views import bp", "from shop2.views import bp"),
        ('entry = "shop:create_app()"', 'entry = "shop2:create_app()"'),
        ("SHOP_GREETING=hi", "SHOP2_GREETING=hi"),
        ('from_prefixed_env("SHOP")', 'from_prefixed_env("SHOP2")'),
        ("# Shop\nThe shop service.", "# Shop2\nThe shop2 service."),
        ("shop-api.example.com", "shop2-api.example.com"),
        (
            "shopping shop_utils myshop Shopify SHOPPING _shop",
            "shopping shop_utils myshop Shopify SHOPPING _shop",
        ),
    ],
)
def test_renamer_replaces_tokens_only(before: str, after: str) -> None:
    assert Renamer("shop", "shop2").text(before)[0] == after


def test_renamer_multiword_title_and_paths() -> None:
    r = Renamer("order_tracker", "billing")
    assert (
        r.text("# Order Tracker\nORDER_TRACKER_DB=x order_tracker.views")[0]
        == "# Billing\nBILLING_DB=x billing.views"
    )
    assert r.path(PurePosixPath("src/order_tracker/views.py")) == PurePosixPath("src/billing/views.py")
    assert r.path(PurePosixPath("tests/test_order_tracker.py")) == PurePosixPath(
        "tests/test_order_tracker.py"
    )
