"""The host side runs on RHEL 9's python3 (3.9) with nothing but the standard library.

Checked with a real 3.9 interpreter when this machine has one (pyenv ships 3.9 here): every
host-side module imports in isolated mode (-I -S: no site-packages), and the renderers give
byte-for-byte the same files as on the build side's Python.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from integrator.bundle.zipapp import HOST_TOOL
from integrator.layout import Layout
from integrator.render import render_all
from integrator.spec import parse_spec

from .test_layers import listed

SRC = Path(__file__).resolve().parents[1] / "src"
SPEC = {
    "service": {"name": "shop", "version": "1.0", "entry": "shop:create_app()"},
    "http": {"server_names": ["shop.example.com"]},
    "env": {"SHOP_GREETING": 'hello "world" 100%'},
    "secrets": {"files": ["db_password"]},
    "security": {"network": "outbound"},
}


def python39() -> str | None:
    """A working 3.9 interpreter (pyenv shims on PATH may name one that is not installed)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    candidates += [p for p in (shutil.which("python3.9"),) if p]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == b"(3, 9)":
            return candidate
    return None


def host_modules() -> list[str]:
    """Everything a host runs: HOST_TOOL, the one host-side list plus the command line."""
    return sorted(listed(HOST_TOOL))


@pytest.fixture(scope="module")
def py39() -> str:
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 interpreter on this machine (pyenv 3.9 or python3.9)")
    return interpreter


def run39(py39: str, code: str) -> str:
    proc = subprocess.run(
        [py39, "-I", "-S", "-B", "-c", f"import sys; sys.path.insert(0, {str(SRC)!r})\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_every_host_module_imports_on_python39_with_the_stdlib_only(py39: str) -> None:
    modules = host_modules()
    assert "integrator.host.deploy" in modules and "integrator.bundle.manifest" in modules
    out = run39(py39, f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\nprint('ok')")
    assert out.strip() == "ok"


def test_renderers_give_the_same_bytes_on_python39(py39: str) -> None:
    code = (
        "import json\nfrom integrator.spec import parse_spec\nfrom integrator.layout import Layout\n"
        "from integrator.render import render_all\n"
        f"spec = parse_spec(json.loads({json.dumps(SPEC)!r}))\n"
        "files = render_all(spec, Layout.for_spec(spec, 'rhel'), '20260101T000000Z-0123abcd')\n"
        "print(json.dumps({str(f.path): f.content for f in files}))"
    )
    on39 = json.loads(run39(py39, code))
    spec = parse_spec(SPEC)
    here = {
        str(f.path): f.content
        for f in render_all(spec, Layout.for_spec(spec, "rhel"), "20260101T000000Z-0123abcd")
    }
    assert on39 == here
