"""A deploy on a host whose only `python3` is 3.9 (RHEL 9's layout, tests/py39host.py).

The bundle carries a cp39 and a cp311 target; for the template service pip resolves gunicorn
23.0.0 for 3.9 and 27.x for 3.11, so the gunicorn the host's venv holds says which target the
deploy picked. Debian's 3.11 is out of every PATH there, so the host tool (the stager runs
`python3 -I`), the venv and gunicorn can only have run on 3.9.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrator.bundle.commands import bundle
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.py39host import python39_host  # noqa: F401  (the module's fixture)
from tests.test_deploy_e2e import _new_service, get, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

NAME = "old39"


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template service bundled for 3.9 and 3.11 (the first target is not the host's by luck)."""
    root = tmp_path_factory.mktemp("py39")
    src = _new_service(NAME, root / NAME)
    result = bundle(src, pythons=["3.11", "3.9"], platforms=["x86_64"], output=root / "dist", sign_key=None)
    assert result.exit_code == 0, result.lines
    return next((root / "dist").glob("*.pyz"))


def test_a_deploy_on_a_python39_host_runs_the_cp39_target_with_gunicorn_23(
    python39_host: Sandbox,  # noqa: F811
    two_targets: Path,
) -> None:
    box = python39_host
    assert sh(box, "sh", "-c", "command -v python3.11 python3.12 python3.10").stdout == b""
    assert box.exec(["readlink", "-f", "/usr/bin/python3"]).stdout.strip() == b"/usr/bin/python3.9"
    ok(commands.deploy(DeployOptions(two_targets), SandboxTarget(box.name)))

    venv = box.exec(["readlink", "-f", f"/opt/{NAME}/current/venv"]).stdout.decode().strip()
    assert Path(venv).name.startswith("py3.9-"), venv
    probe = "import gunicorn, sys; print(gunicorn.__version__, '%d.%d' % sys.version_info[:2])"
    assert box.exec([f"{venv}/bin/python", "-I", "-c", probe]).stdout.split() == [b"23.0.0", b"3.9"]
    main_pid = box.exec(["systemctl", "show", "-p", "MainPID", "--value", f"{NAME}-a.service"]).stdout
    exe = box.exec(["readlink", f"/proc/{int(main_pid)}/exe"]).stdout.decode().strip()
    assert exe == "/usr/bin/python3.9", exe

    status, body, _ = get(box.address, "/", host=NAME, headers={"Accept": "application/json"})
    assert (status, json.loads(body)["version"]) == (200, "0.1.0")
