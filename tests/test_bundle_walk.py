"""What pip's resolution lacks or has in excess for a target, by the target's own markers
(bundle/locks.py `walk`): pip evaluates markers for the interpreter it runs on (pypa/pip#11010)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from integrator.bundle.locks import pin_of, requirement_names, walk
from integrator.bundle.targets import TargetSpec


def wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{dist_info}/METADATA", meta)
        zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\n")
    path = directory / f"{name}-{version}-py3-none-any.whl"
    path.write_bytes(buf.getvalue())
    return path


APP = ("web>=3", 'importlib-metadata>=3.6; python_version < "3.10"', 'tomli; python_version < "3.11"',
       'pywin; sys_platform == "win32"', 'extra-only; extra == "dev"')  # fmt: skip


@pytest.mark.parametrize(
    ("python", "present", "missing", "reached"),
    [
        # what pip running on 3.11 resolves for a 3.9 target: the 3.9-only ones are missing
        ("3.9", ["app", "web"], ("importlib-metadata>=3.6", "tomli"), {"app", "web"}),
        (
            "3.9",
            ["app", "web", "importlib_metadata", "tomli", "zipp"],
            (),
            {"app", "web", "importlib-metadata", "tomli", "zipp"},
        ),
        ("3.10", ["app", "web", "tomli"], (), {"app", "web", "tomli"}),
        # what pip running on 3.9 resolves for a 3.12 target: complete, two wheels not needed there
        ("3.12", ["app", "web", "importlib_metadata", "tomli", "zipp"], (), {"app", "web"}),
    ],
)
def test_walk_uses_the_targets_markers(
    tmp_path: Path, python: str, present: list[str], missing: tuple[str, ...], reached: set[str]
) -> None:
    requires = {
        "app": APP,
        "web": ("click>=8; python_version < '3.0'",),
        "importlib_metadata": ("zipp>=3.20",),
        "tomli": (),
        "zipp": (),
    }
    versions = {"app": "1.0", "web": "3.1", "importlib_metadata": "8.7.1", "tomli": "2.0", "zipp": "3.23"}
    pins = [pin_of(wheel(tmp_path, n, versions[n], requires[n])) for n in present]
    found = walk(TargetSpec(python, "x86_64"), pins, tmp_path, ["app"])
    assert found.missing == missing
    assert found.reached == reached


def test_a_pinned_version_that_does_not_fit_is_missing_too(tmp_path: Path) -> None:
    pins = [pin_of(wheel(tmp_path, "app", "1.0", ("web>=3",))), pin_of(wheel(tmp_path, "web", "2.0"))]
    assert walk(TargetSpec("3.11", "x86_64"), pins, tmp_path, ["app"]).missing == ("web>=3",)


def test_requirement_names_or_none_for_what_is_not_a_plain_requirement() -> None:
    assert requirement_names(["Flask>=3  # the web", "", "# c", "requests_oauth[x]==1"]) == {
        "flask",
        "requests-oauth",
    }
    assert requirement_names(["./vendor/thing.whl"]) is None
