"""A sandbox host whose `python3` is 3.9, laid out the way RHEL 9 has it (issue 11).

RHEL 9, the main target, ships Python 3.9 as its `python3`; the sandbox hosts are Debian 12 (3.11).
`make_python39` copies this machine's pyenv 3.9 build into a running host where RHEL 9 keeps its
interpreter (`/usr/bin/python3.9`, the standard library in `/usr/lib/python3.9`,
`libpython3.9.so.1.0` in `/usr/lib`), runs `ldconfig`, points `/usr/bin/python3` at it and moves
Debian's 3.11 out of every PATH, so nothing on the host (the host tool, `python3 -m venv`, a
bundle's target choice) can run on anything but 3.9.

`python39_host` is a module-scoped fixture: one such host per test module. Other modules load it with
`from tests.py39host import python39_host  # noqa: F401`.
"""

from __future__ import annotations

import glob
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from integrator.sandbox import Sandbox
from tests.sandbox_fixture import MakeSandbox, sandbox_required

VERSION = "3.9"
DEBIAN_PYTHON = "/usr/bin/python3.11"
HIDDEN = "/usr/libexec/debian-python3.11"  # Debian's interpreter, out of every PATH
# Not needed on a host, and 90 of the 180 MB: the test suite and pyenv's own pip.
SKIPPED = {"test", "site-packages", "idlelib", "tkinter", "turtledemo"}


def pyenv_python39(roots: tuple[str, ...] = ("~/.pyenv/versions", "/root/.pyenv/versions")) -> Path | None:
    """The prefix of a pyenv 3.9 build on this machine (bin/python3.9, lib/python3.9, libpython)."""
    for root in roots:
        for prefix in sorted(glob.glob(os.path.join(os.path.expanduser(root), f"{VERSION}.*")), reverse=True):
            path = Path(prefix)
            needed = ("bin/python3.9", "lib/libpython3.9.so.1.0", "lib/python3.9/os.py")
            if all((path / rel).exists() for rel in needed):
                return path
    return None


def _skip_noise(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Owned by root, without the parts of the standard library a host never imports."""
    parts = info.name.split("/")
    if len(parts) > 3 and parts[:3] == ["usr", "lib", "python3.9"] and parts[3] in SKIPPED:
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _send(box: Sandbox, prefix: Path) -> None:
    """One tar stream into the host's / (the tar runs inside, so paths resolve there)."""
    proc = subprocess.Popen(
        box.exec_argv(["tar", "--numeric-owner", "-xpf", "-", "-C", "/"]),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.add(prefix / "bin/python3.9", "usr/bin/python3.9", filter=_skip_noise)
            tar.add(prefix / "lib/libpython3.9.so.1.0", "usr/lib/libpython3.9.so.1.0", filter=_skip_noise)
            tar.add(prefix / "lib/python3.9", "usr/lib/python3.9", filter=_skip_noise)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # tar inside gave up: its exit code and stderr say why
    proc.wait(timeout=600)
    assert proc.stderr is not None
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{box.name}: copying Python 3.9 in failed: {err.decode(errors='replace')}")


def make_python39(box: Sandbox, prefix: Path) -> str:
    """Turn a running Debian 12 host into one whose only `python3` is 3.9; returns its version."""
    _send(box, prefix)
    box.exec(["mkdir", "-p", "/usr/lib/python3.9/site-packages"])
    box.exec(["ldconfig"])
    box.exec(["ln", "-sfn", "python3.9", "/usr/bin/python3"])
    box.exec(["mv", DEBIAN_PYTHON, HIDDEN])
    probe = "import sys, ssl, sqlite3, venv, zlib; print('%d.%d.%d' % sys.version_info[:3])"
    return box.exec(["python3", "-I", "-c", probe]).stdout.decode().strip()


def require_pyenv_python39() -> Path:
    """The pyenv build, or a skip (a failure where sandbox tests must run: CI)."""
    prefix = pyenv_python39()
    if prefix is None:
        message = "no pyenv Python 3.9 build on this machine (~/.pyenv/versions/3.9.*)"
        if sandbox_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return prefix


@pytest.fixture(scope="module")
def python39_host(make_module_sandbox: MakeSandbox) -> Sandbox:
    """One fresh host per module whose `python3` is 3.9 (RHEL 9's layout), destroyed after it."""
    prefix = require_pyenv_python39()
    box = make_module_sandbox()
    version = make_python39(box, prefix)
    assert version.startswith(f"{VERSION}."), version
    return box
