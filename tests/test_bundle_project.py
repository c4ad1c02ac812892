"""What `bundle` takes from the project itself: its version (one source) and its Requires-Python.

The fast cases work on wheels made here (a wheel is a zip with a .dist-info/METADATA); the
`network` ones build real bundles, pip resolving against the index (the dependency that needs a
newer Python comes from a local index made here, beside the configured one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from integrator.bundle import appwheel, flatwheel, targets, wheels
from integrator.bundle.commands import bundle
from integrator.cli import main
from integrator.errors import BundleError, SpecError, UsageError
from integrator.project.model import load_project
from integrator.spec import ServiceSpec, parse_spec
from integrator.template.commands import init

PY39, PY311, PY312 = (targets.TargetSpec(p, "x86_64") for p in ("3.9", "3.11", "3.12"))


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    requires_python: str | None,
    deps: tuple[str, ...] = (),
    modules: dict[str, str] | None = None,
) -> Path:
    """A pure-Python wheel with the metadata given: enough for pip and for the bundle's readers."""
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += f"Requires-Python: {requires_python}\n" if requires_python else ""
    meta += "".join(f"Requires-Dist: {d}\n" for d in deps)
    files = {
        **(modules if modules is not None else {f"{name}/__init__.py": ""}),
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(text)}\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return wheel


# --- targets from Requires-Python ---------------------------------------------------------------


def test_default_targets_follow_requires_python_with_a_note() -> None:
    kept, notes = targets.project_targets([PY39, PY311, PY312], ">=3.10", given=False)
    assert kept == [PY311, PY312]
    assert notes == ["no CPython 3.9 target: the project requires Python >=3.10"]
    assert targets.project_targets([PY39, PY311], ">=3.9", given=False) == ([PY39, PY311], [])
    assert targets.project_targets([PY39], None, given=False) == ([PY39], [])


def test_poetry_caret_and_patch_bounds_admit_the_minor_version() -> None:
    assert targets.admits(">=3.10,<4.0", "3.10") and not targets.admits(">=3.10,<4.0", "3.9")
    assert targets.admits(">=3.9.2", "3.9")  # some 3.9.x fits: the target stays
    assert not targets.admits("<3.12", "3.12")


def test_a_target_asked_for_that_the_project_excludes_is_bad_input() -> None:
    with pytest.raises(UsageError, match=r"^--python 3.9: the project requires Python >=3.10 "):
        targets.project_targets([PY39, PY311], ">=3.10", given=True)
    with pytest.raises(UsageError, match=r"none of the targets 3.9 fits; pass --python"):
        targets.project_targets([PY39], ">=3.10", given=False)


# pip 23.2's own words, refusing a dependency found as files whose every version needs Python >= 3.10
FROM_FILES = """\
Processing ./needs310probe-2.0.0-py3-none-any.whl (from myapp==0.1.0)
ERROR: Packages require a different Python. 3.9.0 not in:
'>=3.10' (required by needs310probe 2.1.0 (from /var/tmp/x/needs310probe-2.1.0-py3-none-any.whl))
'>=3.10' (required by needs310probe 2.0.0 (from /var/tmp/x/needs310probe-2.0.0-py3-none-any.whl))
"""


def test_a_dependency_requires_python_refusal_names_the_package_and_its_requirement(tmp_path: Path) -> None:
    needs = wheels.python_needs(FROM_FILES, PY39, tmp_path / "probe", tmp_path)
    assert needs == ("needs310probe", "2.1.0", ">=3.10")
    assert wheels.download_error(FROM_FILES, PY39, needs) == (
        "needs310probe 2.1.0 needs Requires-Python >=3.10: target cp39-x86_64 is CPython 3.9; "
        "drop the 3.9 target (--python) or pin a version of needs310probe that supports it"
    )
    no_python = "ERROR: No matching distribution found for docopt\n"
    assert wheels.python_needs(no_python, PY39, tmp_path / "probe", tmp_path) is None  # no probe run
    assert not (tmp_path / "probe").exists()


# --- one version ----------------------------------------------------------------------------------


def _spec(version: str) -> ServiceSpec:
    return parse_spec({"service": {"name": "notes", "version": version, "entry": "notes:create_app()"}})


def test_a_wheel_whose_version_differs_from_service_toml_is_refused_naming_both(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "notes"\nversion = "0.1.0"\n')
    wheel = make_wheel(tmp_path, "notes", "0.1.0", ">=3.9")
    appwheel.check_version(wheel, _spec("0.1.0"), tmp_path)
    appwheel.check_version(wheel, _spec("0.1"), tmp_path)  # one version, two spellings
    with pytest.raises(SpecError) as exc:
        appwheel.check_version(wheel, _spec("0.2.0"), tmp_path)
    assert exc.value.message == (
        "version differs: service.toml [service] version is '0.2.0', the project's is '0.1.0' "
        "(pyproject.toml [project] version); set service.toml's version to 0.1.0: the project's metadata "
        "is the one source"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.poetry]\nname = "notes"\nversion = "0.1.0"\n')
    with pytest.raises(SpecError, match=r"\(pyproject.toml \[tool.poetry\] version\)"):
        appwheel.check_version(wheel, _spec("0.2.0"), tmp_path)


def test_requires_python_is_read_from_the_app_wheel(tmp_path: Path) -> None:
    assert appwheel.app_requires_python(make_wheel(tmp_path, "a", "1", ">=3.10,<4.0")) == ">=3.10,<4.0"
    assert appwheel.app_requires_python(make_wheel(tmp_path, "b", "1", None)) is None


# --- the entry --------------------------------------------------------------------------------


def _entry_spec(entry: str) -> ServiceSpec:
    return parse_spec({"service": {"name": "notes", "version": "1", "entry": entry}})


def test_an_entry_the_app_wheel_does_not_define_is_refused_naming_it(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "notes",
        "1",
        None,
        modules={
            "notes/__init__.py": "from flask import Flask\n\ndef create_app():\n    return Flask(__name__)\n",
            "notes/wsgi.py": "try:\n    from notes import create_app\nexcept ImportError:\n    raise\n"
            "app = create_app()\n",
            "lazy.py": "def __getattr__(name):\n    return name\n",
            "star.py": "from notes.wsgi import *\n",
        },
    )
    for entry in (
        "notes:create_app()",
        "notes.wsgi:app",
        "notes.wsgi:create_app()",
        "lazy:anything",
        "star:app",
    ):
        appwheel.check_entry(wheel, _entry_spec(entry))
    with pytest.raises(SpecError) as exc:
        appwheel.check_entry(wheel, _entry_spec("notes:make_app()"))
    assert exc.value.message == (
        "[service] entry 'notes:make_app()': module notes of the app wheel binds no make_app "
        "(it has create_app); check service.toml"
    )
    with pytest.raises(
        SpecError, match=r"^\[service\] entry 'note:create_app\(\)': the app wheel has no module "
    ):
        appwheel.check_entry(wheel, _entry_spec("note:create_app()"))


# --- real builds ------------------------------------------------------------------------------------


def write_project(root: Path, version: str, requires_python: str, deps: list[str], spec_version: str) -> Path:
    (root / "src" / "notes").mkdir(parents=True)
    (root / "src" / "notes" / "__init__.py").write_text(
        "from flask import Flask\n\ndef create_app():\n    app = Flask(__name__)\n"
        "    app.add_url_rule('/healthz', 'healthz', lambda: 'ok')\n    return app\n"
    )
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "notes"\nversion = "{version}"\nrequires-python = "{requires_python}"\n'
        f"dependencies = {deps!r}\n".replace("'", '"')
    )
    (root / "service.toml").write_text(
        f'[service]\nname = "notes"\nversion = "{spec_version}"\nentry = "notes:create_app()"\n'
    )
    return root


@pytest.mark.network
def test_bundle_refuses_a_second_version_before_any_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path / "notes", "0.1.0", ">=3.9", ["flask>=3.0"], spec_version="0.2.0")
    out = tmp_path / "dist"
    assert main(["bundle", str(project), "-o", str(out), "--python", "3.11"]) == 2
    err = capsys.readouterr().err
    assert "service.toml [service] version is '0.2.0', the project's is '0.1.0'" in err
    assert "downloading wheels" not in err and not list(out.glob("*.pyz"))


@pytest.mark.network
def test_default_targets_of_a_project_requiring_310_have_no_cp39(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path / "notes", "0.1.0", ">=3.10", ["flask>=3.0"], spec_version="0.1.0")
    out = tmp_path / "dist"
    assert main(["--json", "bundle", str(project), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["targets"] == ["cp311-x86_64", "cp312-x86_64"]
    assert "no CPython 3.9 target: the project requires Python >=3.10" in captured.err
    assert main(["bundle", str(project), "-o", str(out), "--python", "3.9,3.11"]) == 2
    assert "--python 3.9: the project requires Python >=3.10" in capsys.readouterr().err


def serve_needs310probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local index beside pip's configured ones with `needs310probe`, whose every version needs 3.10."""
    files = tmp_path / "files"
    (files / "simple" / "needs310probe").mkdir(parents=True)
    links = []
    for version in ("2.0.0", "2.1.0"):
        wheel = make_wheel(files, "needs310probe", version, ">=3.10")
        links.append(f'<a href="../../{wheel.name}" data-requires-python="&gt;=3.10">{wheel.name}</a>')
    (files / "simple" / "needs310probe" / "index.html").write_text(
        "<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
    )
    configured = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.extra-index-url"],
        capture_output=True,
        text=True,
    ).stdout.split()  # the environment variable replaces pip's configured value: keep that too
    extra = " ".join([*configured, f"file://{files}/simple"])
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", extra)


@pytest.mark.network
def test_a_dependency_needing_a_newer_python_is_named_with_its_requires_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_needs310probe(tmp_path, monkeypatch)
    project = write_project(
        tmp_path / "notes", "0.1.0", ">=3.9", ["flask>=3.0", "needs310probe"], spec_version="0.1.0"
    )
    with pytest.raises(BundleError) as exc:
        bundle(project, ["3.9"], ["x86_64"], tmp_path / "dist", progress=lambda _: None)
    assert str(exc.value).startswith("needs310probe 2.1.0 needs Requires-Python >=3.10"), str(exc.value)
    assert "target cp39-x86_64 is CPython 3.9" in str(exc.value) and "glibc" not in str(exc.value)


@pytest.mark.network
def test_default_targets_follow_a_dependencys_requires_python_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_needs310probe(tmp_path, monkeypatch)
    project = write_project(
        tmp_path / "notes", "0.1.0", ">=3.9", ["flask>=3.0", "needs310probe"], spec_version="0.1.0"
    )
    notes: list[str] = []
    result = bundle(project, None, ["x86_64"], tmp_path / "dist", progress=notes.append)
    assert result.data["targets"] == ["cp311-x86_64", "cp312-x86_64"]
    assert "no cp39-x86_64 target: needs310probe 2.1.0 needs Requires-Python >=3.10" in notes, notes


@pytest.mark.network
def test_bundle_with_a_typo_in_entry_exits_2_before_any_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path / "notes", "0.1.0", ">=3.9", ["flask>=3.0"], spec_version="0.1.0")
    spec = (project / "service.toml").read_text().replace("notes:create_app()", "notes:make_app()")
    (project / "service.toml").write_text(spec)
    assert main(["bundle", str(project), "-o", str(tmp_path / "dist")]) == 2
    err = capsys.readouterr().err
    assert "[service] entry 'notes:make_app()'" in err and "downloading wheels" not in err


# --- what a flat project's wheel holds -----------------------------------------------------------


def test_a_flat_projects_wheel_packages_the_modules_init_reports(tmp_path: Path) -> None:
    """Not __main__.py, util_test.py or testing/: what init lists is what the bundle packages."""
    files = {
        "shop/__init__.py": "from flask import Flask\napp = Flask(__name__)\n",
        "helpers.py": "",
        "__main__.py": "print('run')\n",
        "util_test.py": "",
        "test_shop.py": "",
        "testing/__init__.py": "",
        "venv/__init__.py": "",
        "requirements.txt": "flask\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    reported = init(tmp_path, name="shop_site").data["modules"]
    assert reported == ["helpers", "shop"]
    members = flatwheel.wheel_members(load_project(tmp_path), _spec("0.1.0"))
    assert [n for n in members if ".dist-info/" not in n] == ["helpers.py", "shop/__init__.py"]
