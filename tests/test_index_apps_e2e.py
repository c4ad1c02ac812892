"""Two well-known WSGI apps taken from the package index as they are, served on a sandbox host.

Each sdist is downloaded with pip and unpacked untouched, as a new user would; then `init` (with
the documented --entry where the project holds more than one app), `bundle`, `deploy`: no file
of the app is edited and service.toml is what init wrote.
- pypiserver 2.4.2: Requires-Python >=3.10, so its bundle targets the host's 3.11 (Debian 12)
  and `--python 3.9` is refused for that reason; its version is dynamic (hatch), read from the
  sdist's PKG-INFO; its health route (/health) is added at run time, so only asking the app
  (init's throwaway venv) finds it. Its factory takes its options as keyword arguments, given
  with --entry as literals: `root="~"` keeps packages in HOME (the state directory on the host),
  `authenticate=[]` with `password_file="."` takes uploads without a password file. A package
  uploaded through nginx as twine does is written by the app, as its user, into the state
  directory, and is still served after a redeploy and a rollback.
- httpbin 0.10.4: a Flask app whose `filters.py` makes a second Flask object (init lists both;
  `--entry httpbin:app` picks the package's); it has no /healthz or /health, init finds that `/`
  answers 200.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import ssl
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from integrator.bundle.commands import bundle
from integrator.errors import UsageError
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.spec import load_spec
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from integrator.template.commands import init
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import get, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

PYPISERVER, HTTPBIN = "pypiserver==2.4.2", "httpbin==0.10.4"
PYPISERVER_ENTRY = 'pypiserver:app(root="~",authenticate=[],password_file=".")'


def from_index(requirement: str, where: Path) -> Path:
    """The project as the index has it: its sdist, unpacked, nothing changed."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(where),
            requirement,
        ],
        check=True,
        timeout=600,
    )
    (sdist,) = where.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(where, filter="data")
    return where / sdist.name.removesuffix(".tar.gz")


def built(root: Path, out: Path, epoch: str | None = None) -> Path:
    """`integrator bundle` with the default targets; `epoch` (SOURCE_DATE_EPOCH): a later build of
    the same source, a bundle with another sha256, so deploying it makes a new release."""
    before = os.environ.pop("SOURCE_DATE_EPOCH", None)
    if epoch is not None:
        os.environ["SOURCE_DATE_EPOCH"] = epoch
    try:
        result = bundle(root, None, ["x86_64"], out, progress=lambda _: None)
    finally:
        os.environ.pop("SOURCE_DATE_EPOCH", None)
        if before is not None:
            os.environ["SOURCE_DATE_EPOCH"] = before
    assert result.exit_code == 0, result.lines
    return Path(str(result.data["path"]))


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the project, its bundle): init with --entry (the factory is `app(**kwargs)`), as is."""
    root = from_index(PYPISERVER, tmp_path_factory.mktemp("pypiserver"))
    result = init(root, entry=PYPISERVER_ENTRY, install=True)
    assert load_spec(root).entry == PYPISERVER_ENTRY
    assert result.data["version"] == "2.4.2" and result.data["health_path"] == "/health"
    assert "throwaway cp311" in str(result.data["health_probe"])
    return root, built(root, root.parent / "dist")


@pytest.fixture(scope="module")
def httpbin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = from_index(HTTPBIN, tmp_path_factory.mktemp("httpbin"))
    result = init(root, entry="httpbin:app", install=True)
    assert result.data["health_path"] == "/", result.data["health_probe"]
    return built(root, root.parent / "dist")


def test_an_app_that_needs_python_3_10_is_refused_for_3_9_naming_its_requires_python(
    pypiserver: tuple[Path, Path],
) -> None:
    root, _ = pypiserver
    with pytest.raises(
        UsageError, match=r"--python 3\.9: the project requires Python >=3\.10 \(Requires-Python"
    ):
        bundle(root, ["3.9"], ["x86_64"], root.parent / "dist39", progress=lambda _: None)
    assert load_spec(root).http.health_path == "/health"


def sdist(name: str, version: str) -> tuple[str, bytes]:
    """A small sdist (its file name and bytes): PKG-INFO in `name-version/`, as an index holds it."""
    out, top = io.BytesIO(), f"{name}-{version}"
    info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        member = tarfile.TarInfo(f"{top}/PKG-INFO")
        member.size, member.mtime = len(info), 1700000000
        tar.addfile(member, io.BytesIO(info))
    return f"{top}.tar.gz", out.getvalue()


def upload(address: str, host: str, filename: str, data: bytes) -> tuple[int, str]:
    """POST / through nginx as twine does (multipart: `:action=file_upload`, the file in `content`),
    from this machine to the sandbox only."""
    assert address.startswith("10."), address
    boundary = "integrator-" + hashlib.sha256(data).hexdigest()[:24]
    fields = [("name", filename.split("-")[0]), ("version", "1.0"), (":action", "file_upload")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPConnection(address, 443, timeout=30)
    conn.sock = ctx.wrap_socket(socket.create_connection((address, 443), 30), server_hostname=host)
    try:
        headers = {"Host": host, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_pypiserver_keeps_an_upload_across_a_redeploy_and_a_rollback(
    box: Sandbox, pypiserver: tuple[Path, Path]
) -> None:
    root, pyz = pypiserver
    later = built(root, root.parent / "later", epoch="1700000000")
    target = SandboxTarget(box.name)
    ok(commands.deploy(DeployOptions(pyz), target))
    assert get(box.address, "/health", "pypiserver")[0] == 200
    name, data = sdist("demo", "1.0")
    stored = f"/var/lib/pypiserver/{name}"  # root="~": HOME, the state directory
    assert sh(box, "test", "-e", stored).returncode == 1  # nobody but the app puts it there
    status, body = upload(box.address, "pypiserver", name, data)
    assert status == 200, body
    owner = sh(box, "stat", "-c", "%U", stored)
    assert owner.returncode == 0 and owner.stdout.decode().strip() == "pypiserver"
    digest = sh(box, "sha256sum", stored).stdout.decode().split()[0]
    assert digest == hashlib.sha256(data).hexdigest()
    assert name in get(box.address, "/simple/demo/", "pypiserver")[1]
    ok(commands.deploy(DeployOptions(later), target))  # a second release
    assert name in get(box.address, "/simple/demo/", "pypiserver")[1]
    ok(commands.rollback("pypiserver", target))
    assert name in get(box.address, "/simple/demo/", "pypiserver")[1]
    # Still the app's: a second upload of the same file is refused (409), the first one is kept.
    assert upload(box.address, "pypiserver", name, data)[0] == 409


def test_httpbin_answers_over_https_through_nginx(box: Sandbox, httpbin: Path) -> None:
    ok(commands.deploy(DeployOptions(httpbin), SandboxTarget(box.name)))
    status, body, _ = get(box.address, "/get?x=1", "httpbin")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["args"] == {"x": "1"} and answer["url"] == "https://httpbin/get?x=1"
