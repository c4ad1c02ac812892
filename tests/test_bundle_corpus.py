"""What `bundle` packages for each app of the corpus (tests/fixtures/apps), and its preflight verdict.

Golden files in tests/golden/bundle/<case>/:
- `files.txt`: the app wheel's files as they land in site-packages. A flat project's wheel is
  written here from the project model (fast); a packaged one's is built by its backend (network:
  pip fetches the backend).
- `verdict.txt`: what a real `bundle --python 3.11` says: the preflight's answer or its refusal,
  and the warnings (network: the dependencies are downloaded and installed into a throwaway venv).
`UPDATE_GOLDEN=1 pytest tests/test_bundle_corpus.py` rewrites them; review the diff by eye.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from integrator.bundle.appwheel import build_app_wheel, wheel_files
from integrator.bundle.commands import bundle
from integrator.bundle.flatwheel import write_flat_wheel
from integrator.errors import IntegratorError
from integrator.project.model import FLAT, load_project
from integrator.spec import load_spec
from integrator.template.commands import init

APPS = Path(__file__).parent / "fixtures" / "apps"
GOLDEN = Path(__file__).parent / "golden" / "bundle"
ENTRIES = {"ambiguous": "admin:app"}  # init refuses and lists both apps: the user picks one
NOT_BUNDLED = {"factory_args"}  # init refuses: gunicorn cannot call it until a wsgi.py is added
CASES = sorted(p.name for p in APPS.iterdir() if p.is_dir() and p.name not in NOT_BUNDLED)
FLAT_CASES = [c for c in CASES if not (APPS / c / "pyproject.toml").exists()]
PACKAGED_CASES = [c for c in CASES if c not in FLAT_CASES]


def adopted(case: str, tmp_path: Path) -> Path:
    root = Path(shutil.copytree(APPS / case, tmp_path / case))
    init(root, entry=ENTRIES.get(case))
    return root


def check_golden(case: str, name: str, text: str) -> None:
    path = GOLDEN / case / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{case}: {name} differs"


def listing(wheel: Path) -> str:
    return "".join(f"{p.as_posix()}\n" for p in wheel_files(wheel))


@pytest.mark.parametrize("case", FLAT_CASES)
def test_a_flat_apps_wheel_holds_what_the_model_ships(case: str, tmp_path: Path) -> None:
    root = adopted(case, tmp_path)
    project = load_project(root)
    assert project.packaging == FLAT
    wheel = write_flat_wheel(project, load_spec(root), tmp_path / "out", epoch=315532800)
    check_golden(case, "files.txt", listing(wheel))


def test_a_config_file_beside_a_flat_module_is_shipped_beside_it_and_ignored_files_are_not(
    tmp_path: Path,
) -> None:
    root = adopted("flat_flask", tmp_path)
    files = set(wheel_files(write_flat_wheel(load_project(root), load_spec(root), tmp_path / "o", 315532800)))
    assert {Path("app.py"), Path("config.json"), Path("templates/index.html")} <= {Path(f) for f in files}
    for absent in ("debug.log", "instance/dev.cfg", ".env", ".gitignore", "tests/checks.py", "service.toml"):
        assert Path(absent) not in {Path(f) for f in files}, absent


def test_the_flat_wheel_is_reproducible(tmp_path: Path) -> None:
    root = adopted("flat_flask", tmp_path)
    project, spec = load_project(root), load_spec(root)
    one = write_flat_wheel(project, spec, tmp_path / "one", 315532800).read_bytes()
    assert one == write_flat_wheel(project, spec, tmp_path / "two", 315532800).read_bytes()


@pytest.mark.network
@pytest.mark.parametrize("case", PACKAGED_CASES)
def test_a_packaged_apps_wheel_as_its_backend_builds_it(case: str, tmp_path: Path) -> None:
    root = adopted(case, tmp_path)
    (tmp_path / "work").mkdir()
    wheel = build_app_wheel(load_project(root), load_spec(root), tmp_path / "work", 315532800, None)
    check_golden(case, "files.txt", listing(wheel))


@pytest.mark.network
@pytest.mark.parametrize("case", CASES)
def test_the_preflight_verdict_of_each_app(case: str, tmp_path: Path) -> None:
    root = adopted(case, tmp_path)
    try:
        result = bundle(root, ["3.11"], ["x86_64"], tmp_path / "dist", progress=lambda _: None)
    except IntegratorError as exc:
        text = f"exit {exc.exit_code}: {exc.message}\n"
    else:
        preflight = result.data["preflight"]
        assert isinstance(preflight, dict)
        text = f"exit 0: {preflight.get('answer', preflight.get('reason'))}\n"
        text += "".join(f"warning: {w}\n" for w in result.warnings)
    check_golden(case, "verdict.txt", text.replace(str(root), "<root>"))
