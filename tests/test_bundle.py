"""Building real bundles: pip's resolution per target, reproducible bytes, and an offline install.

Builds download from the package index the first time (pip's own cache serves later runs);
the template service is built once per session. The offline test installs from the bundle
inside a network namespace with no network at all (`unshare -n`, root only; CI must run it).
"""

from __future__ import annotations

import glob
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrator.bundle import appwheel, flatwheel, targets, wheels
from integrator.bundle.commands import bundle, verify
from integrator.bundle.manifest import Manifest, verify_zip
from integrator.bundle.source import ZIP_EPOCH, source_info
from integrator.bundle.zipapp import HOST_SIDE
from integrator.errors import BundleError, UsageError
from integrator.project.model import FLAT, PACKAGED, load_project
from integrator.result import Result
from integrator.spec import dump_spec_toml, parse_spec

ADOPT_FIXTURE = Path(__file__).parent / "fixtures" / "adopt" / "guestbook"
ALL_PYTHONS = ["3.9", "3.11", "3.12"]


def _quiet(message: str) -> None:
    """Progress goes nowhere in tests (the CLI prints it to stderr)."""


def _build(service: Path, out: Path, pythons: list[str], sign_key: Path | None = None) -> Result:
    return bundle(
        service, pythons=pythons, platforms=["x86_64"], output=out, sign_key=sign_key, progress=_quiet
    )


# --- services to bundle -------------------------------------------------------------------------


def write_minimal_service(root: Path, name: str, dependencies: list[str]) -> Path:
    """A src-layout Flask service by hand, for what the template does not cover."""
    pkg = root / "src" / name
    pkg.mkdir(parents=True)
    deps = ", ".join(json.dumps(d) for d in dependencies)
    (root / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.9"\n'
        f"dependencies = [{deps}]\n\n"
        '[tool.setuptools.packages.find]\nwhere = ["src"]\n'
    )
    (pkg / "__init__.py").write_text(
        "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n\n"
        "    @app.get('/healthz')\n    def healthz():\n        return {'status': 'ok'}\n\n    return app\n"
    )
    spec = parse_spec({"service": {"name": name, "version": "0.1.0", "entry": f"{name}:create_app()"}})
    (root / "service.toml").write_text(dump_spec_toml(spec))
    return root


def make_template_service(parent: Path, name: str = "shop") -> Path:
    """`integrator new` when the template is installed, else an equivalent service by hand."""
    dest = parent / name
    try:
        from integrator.template.commands import new
    except ImportError:
        return write_minimal_service(dest, name, ["flask>=3.0"])
    new(name, dest)
    return dest


def make_adopted_service(parent: Path) -> Path:
    """The flat guestbook (app.py + storage.py + templates/ + requirements.txt), adopted with init."""
    dest = parent / "guestbook"
    shutil.copytree(ADOPT_FIXTURE, dest)
    try:
        from integrator.template.commands import init
    except ImportError:
        spec = parse_spec({"service": {"name": "guestbook", "version": "0.1.0", "entry": "app:app"}})
        (dest / "service.toml").write_text(dump_spec_toml(spec))
    else:
        init(dest, name="guestbook")
    return dest


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Result]:
    """The template service, bundled for 3.9, 3.11 and 3.12: (service dir, .pyz, Result)."""
    root = tmp_path_factory.mktemp("shop")
    service = make_template_service(root)
    result = _build(service, root / "dist", ALL_PYTHONS)
    return service, Path(result.data["path"]), result


# --- helpers ------------------------------------------------------------------------------------


def find_python(version: str) -> str | None:
    """An interpreter of exactly `version` on this machine (PATH, then pyenv's versions), or None."""
    want = tuple(int(part) for part in version.split("."))
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")))
    for candidate in candidates:
        if candidate is None:
            continue
        probe = subprocess.run(
            [candidate, "-c", f"import sys; sys.exit(sys.version_info[:2] != {want!r})"], capture_output=True
        )
        if probe.returncode == 0:
            return candidate
    return None


def system_python() -> str:
    """The distribution's python3 (what a host has), else the one running the tests."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def interpreters() -> list[str]:
    found = [sys.executable, system_python(), find_python("3.9")]
    unique: dict[str, str] = {}
    for python in found:
        if python is not None:
            unique.setdefault(os.path.realpath(python), python)
    return list(unique.values())


def locked_files(pyz: Path, tag: str) -> set[str]:
    """Wheel file names a target's lock installs (the lock pins hashes; the manifest names them)."""
    manifest = verify_zip(pyz)
    by_hash = {e.sha256: n.rsplit("/", 1)[-1] for n, e in manifest.files.items() if n.endswith(".whl")}
    lock = zipfile.ZipFile(pyz).read(f"payload/locks/{tag}.txt").decode()
    return {by_hash[line.split("sha256:")[1]] for line in lock.splitlines() if "sha256:" in line}


def require_netns() -> None:
    """`unshare -n` needs root; on CI a skip would hide the one test that proves offline installs."""
    why = None
    if os.geteuid() != 0:
        why = "needs root for unshare -n"
    elif shutil.which("unshare") is None:
        why = "unshare (util-linux) not installed"
    elif subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        why = "unshare -n is not permitted here"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"offline install test cannot run on CI: {why}")
        pytest.skip(why)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.unix_path)
        self.sock = sock


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path: unix socket paths must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ib-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve_and_get(venv: Path, app: str, url_path: str, workdir: Path) -> tuple[int, bytes]:
    """Start the venv's gunicorn on a unix socket (no network either), GET once, stop it."""
    sock = workdir / "g.sock"
    argv = ["unshare", "-n", str(venv / "bin" / "gunicorn"), "--bind", f"unix:{sock}", "--workers", "1", app]
    proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                assert proc.stdout is not None  # stdout=PIPE
                pytest.fail(f"gunicorn exited {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
            try:
                conn = UnixHTTPConnection(str(sock))
                conn.request("GET", url_path)
                response = conn.getresponse()
                return response.status, response.read()
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not listen within 30 s")
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# Runs on the "host": the target interpreter in isolated mode, with the bundle's own host code.
OFFLINE_INSTALL = """\
import json, platform, socket, sys
from pathlib import Path
pyz, dest, venv = (Path(arg) for arg in sys.argv[1:4])
sys.path.insert(0, str(pyz))
from integrator.bundle.manifest import WHEELHOUSE, extract_verified
from integrator.bundle.venv import build_venv, host_glibc, pick_target
try:
    socket.create_connection(("pypi.org", 443), timeout=3).close()
    sys.exit("the network is reachable: this would not prove an offline install")
except OSError:
    pass
manifest = extract_verified(pyz, dest)
lock = pick_target(manifest, platform.python_version(), platform.machine(), host_glibc())
build_venv(venv, dest / WHEELHOUSE, dest / lock, python=sys.executable)
print(json.dumps({"lock": lock, "integrator_from": __import__("integrator").__file__}))
"""


def install_offline(pyz: Path, python: str, workdir: Path) -> tuple[Path, str]:
    dest, venv = workdir / "release", workdir / "venv"
    dest.mkdir()
    proc = subprocess.run(
        ["unshare", "-n", python, "-I", "-c", OFFLINE_INSTALL, str(pyz), str(dest), str(venv)],
        capture_output=True,
        text=True,
        timeout=600,
        umask=0o077,  # a hardened root shell: the result must still be readable by the service user
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unreadable = [p for p in (*dest.rglob("*"), *venv.rglob("*.py")) if not p.stat().st_mode & 0o004]
    assert unreadable == [], unreadable[:5]
    report = json.loads(proc.stdout)
    assert report["integrator_from"].startswith(str(pyz)), "host code must come from the bundle"
    return venv, report["lock"]


def venv_python(venv: Path, code: str) -> str:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


# --- the build ------------------------------------------------------------------------------


def test_bundle_reports_what_people_compare_after_a_transfer(shop: tuple[Path, Path, Result]) -> None:
    _, pyz, result = shop
    data = result.data
    assert pyz.name == "shop-0.1.0.pyz" and pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.stat(pyz).st_mode & 0o777 == 0o755
    assert data["sha256"] == hashlib.sha256(pyz.read_bytes()).hexdigest()
    assert data["size"] == pyz.stat().st_size
    assert data["targets"] == ["cp39-x86_64", "cp311-x86_64", "cp312-x86_64"]
    text = "\n".join(result.lines)
    for expected in (str(pyz), "MiB", data["sha256"], "cp39-x86_64, cp311-x86_64, cp312-x86_64", " wheels, "):
        assert expected in text
    assert verify(pyz).data["files"] == data["files"]


def test_bundle_holds_the_host_code_and_no_build_side_code(shop: tuple[Path, Path, Result]) -> None:
    names = zipfile.ZipFile(shop[1]).namelist()
    code = {n for n in names if n.startswith("integrator/")}
    for entry in (
        "integrator/host/pyzmain.py",
        "integrator/spec/__init__.py",
        "integrator/bundle/manifest.py",
    ):
        assert entry in code
    for build_side in ("integrator/cli.py", "integrator/bundle/wheels.py", "integrator/bundle/zipapp.py"):
        assert build_side not in code
    assert not any(n.startswith(("integrator/template/", "integrator/sandbox/")) for n in code)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert names[-1] == "manifest.json" and names == [*sorted(names[:-1]), "manifest.json"]
    assert "bundle/sign.py" in HOST_SIDE


def test_two_builds_of_the_same_tree_are_byte_identical(
    shop: tuple[Path, Path, Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTEGRATOR_CACHE_DIR", "off")  # built and resolved again, not reused
    service, pyz, _ = shop
    again = _build(service, tmp_path / "again", ALL_PYTHONS)
    assert Path(again.data["path"]).read_bytes() == pyz.read_bytes()


def test_python39_target_gets_cp39_wheels_and_its_own_markers(shop: tuple[Path, Path, Result]) -> None:
    """No 3.9 interpreter is needed to build for 3.9, and its markers are evaluated for 3.9."""
    pyz = shop[1]
    cp39 = locked_files(pyz, "cp39-x86_64")
    cp311 = locked_files(pyz, "cp311-x86_64")
    markupsafe39 = [f for f in cp39 if f.startswith("markupsafe-")]
    assert len(markupsafe39) == 1 and "-cp39-cp39-manylinux" in markupsafe39[0]
    assert all(("-cp39-" in f or "-abi3-" in f or "-py3-none-any" in f or "-py2.py3-" in f) for f in cp39)
    # Flask needs importlib-metadata on Python < 3.10 only: pip alone would resolve it for 3.11
    assert any(f.startswith("importlib_metadata-") for f in cp39)
    assert not any(f.startswith("importlib_metadata-") for f in cp311)
    # newer gunicorn releases need Python >= 3.10 (see references/performance.md)
    assert any(f.startswith("gunicorn-23.") for f in cp39)
    assert not any(f.startswith("gunicorn-23.") for f in cp311)
    assert any(f.startswith("shop-0.1.0-") for f in cp39 & cp311)
    manifest = verify_zip(pyz)
    assert {t.tag: t.glibc for t in manifest.targets}["cp39-x86_64"] == "2.17"


def test_the_real_bundle_refuses_one_changed_byte(shop: tuple[Path, Path, Result], tmp_path: Path) -> None:
    pyz = shop[1]
    bad = tmp_path / "bad.pyz"
    with zipfile.ZipFile(pyz) as src, open(bad, "wb") as fh:
        fh.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(fh, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                if info.filename.startswith("payload/wheelhouse/markupsafe-"):
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                dst.writestr(info, data)
    with pytest.raises(BundleError, match=r"markupsafe-.*sha256 differs"):
        verify(bad)


@pytest.mark.network
def test_a_dependency_without_a_wheel_is_one_clear_line(tmp_path: Path) -> None:
    service = write_minimal_service(tmp_path / "svc", "needsdocopt", ["flask>=3.0", "docopt"])  # sdist only
    with pytest.raises(BundleError) as err:
        _build(service, tmp_path / "dist", ["3.11"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("no usable wheel of docopt for cp311-x86_64"), message
    assert not (tmp_path / "dist" / "needsdocopt-0.1.0.pyz").exists()


def test_signed_build_verifies_against_the_key(shop: tuple[Path, Path, Result], tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    key = tmp_path / "release"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "allowed").write_text("integrator " + key.with_suffix(".pub").read_text())
    result = _build(shop[0], tmp_path / "signed", ["3.11"], sign_key=key)
    assert result.data["signed"] is True
    checked = verify(Path(result.data["path"]), allowed_signers=tmp_path / "allowed")
    assert checked.data["signature"].startswith("good: ")


# --- running the bundle with nothing but a system Python ----------------------------------------


@pytest.mark.parametrize("python", interpreters())
def test_pyz_verifies_itself_with_a_bare_interpreter(shop: tuple[Path, Path, Result], python: str) -> None:
    proc = subprocess.run([python, "-I", str(shop[1]), "verify"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ") and "files" in proc.stdout


HOST_IMPORTS = """\
import importlib, json, os, sys, sysconfig
root = sys.argv[1]
sys.path.insert(0, root)
names = []
for directory, _, files in os.walk(os.path.join(root, "integrator")):
    for file in sorted(files):
        if file.endswith(".py"):
            rel = os.path.relpath(os.path.join(directory, file), root)[:-3].replace(os.sep, ".")
            names.append(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
for name in sorted(names):
    importlib.import_module(name)
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
outside = sorted(
    m.__name__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None) and not m.__file__.startswith(stdlib + (root,))
)
print(json.dumps({"imported": len(names), "outside": outside}))
"""


@pytest.mark.parametrize("python", interpreters())
def test_host_side_modules_import_with_the_stdlib_alone(
    shop: tuple[Path, Path, Result], python: str, tmp_path: Path
) -> None:
    """-I -S: no site-packages, no user site, no PYTHONPATH; only the bundle's own files."""
    with zipfile.ZipFile(shop[1]) as zf:
        zf.extractall(tmp_path, members=[n for n in zf.namelist() if n.startswith("integrator/")])
    proc = subprocess.run(
        [python, "-I", "-S", "-c", HOST_IMPORTS, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["imported"] >= 8 and report["outside"] == []


@pytest.mark.parametrize("python", [p for p in (system_python(), find_python("3.9")) if p])
def test_offline_install_then_serve_the_template_service(
    shop: tuple[Path, Path, Result], python: str, short_dir: Path
) -> None:
    require_netns()
    venv, lock = install_offline(shop[1], python, short_dir)
    version = venv_python(venv, "import sys; print('%d.%d' % sys.version_info[:2])")
    assert lock == f"payload/locks/cp{version.replace('.', '')}-x86_64.txt"
    venv_python(venv, "import shop; shop.create_app()")
    gunicorn = venv_python(venv, "import gunicorn; print(gunicorn.__version__)")
    assert gunicorn.startswith("23.") == (version == "3.9")
    status, body = serve_and_get(venv, "shop:create_app()", "/healthz", short_dir)
    assert status == 200 and json.loads(body) == {"status": "ok"}


@pytest.mark.network
def test_offline_install_then_serve_an_adopted_flat_project(short_dir: Path, tmp_path: Path) -> None:
    require_netns()
    service = make_adopted_service(tmp_path)
    # The guestbook has no /healthz: set the path its preflight suggests ("/ answers 2xx"), as a user would.
    toml = service / "service.toml"
    toml.write_text(toml.read_text().replace('health_path = "/healthz"', 'health_path = "/"'))
    result = _build(service, tmp_path / "dist", ["3.11"])
    assert result.data["preflight"]["answer"] == "GET / -> 200"
    pyz = Path(result.data["path"])
    names = zipfile.ZipFile(pyz).namelist()
    assert "payload/wheelhouse/flask-3.0.3-py3-none-any.whl" in names  # the pin in requirements.txt
    assert any(n.startswith("payload/wheelhouse/python_dotenv-") for n in names)
    python = system_python()
    if subprocess.run([python, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 11))"]).returncode:
        pytest.skip(f"{python} is not 3.11")
    venv, _ = install_offline(pyz, python, short_dir)
    status, body = serve_and_get(venv, "app:app", "/", short_dir)
    assert status == 200 and b"<title>Guestbook</title>" in body  # templates/ shipped beside app.py


# --- stages on their own (no network) -----------------------------------------------------------


def test_targets_are_checked_and_cover_rhel8_glibc() -> None:
    chosen = targets.parse_targets(["3.12", "3.9", "3.9"], ["x86_64"])
    assert [t.tag for t in chosen] == ["cp39-x86_64", "cp312-x86_64"]
    platforms = chosen[0].platforms()
    assert platforms[0] == "manylinux_2_28_x86_64" and "manylinux_2_29_x86_64" not in platforms
    assert {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux1_x86_64"} <= set(platforms)
    assert targets.TargetSpec("3.11", "aarch64").platforms()[-1] == "manylinux2014_aarch64"
    both = targets.parse_targets(["3.11"], ["x86_64", "aarch64"])
    assert [t.tag for t in both] == ["cp311-x86_64", "cp311-aarch64"]  # in the order given
    assert chosen[0].marker_env()["python_version"] == "3.9"
    for pythons, machines in (
        (["3.8"], ["x86_64"]),
        (["3"], ["x86_64"]),
        (["3.11"], ["arm"]),
        ([], ["x86_64"]),
    ):
        with pytest.raises(UsageError):
            targets.parse_targets(pythons, machines)


def test_glibc_needed_is_read_from_wheel_tags() -> None:
    assert targets.wheel_glibc("m-1-cp39-cp39-manylinux2014_x86_64.manylinux_2_17_x86_64.whl") == (2, 17)
    assert targets.wheel_glibc("m-1-cp39-cp39-manylinux_2_28_x86_64.whl") == (2, 28)
    assert targets.wheel_glibc("m-1-cp39-cp39-manylinux1_x86_64.whl") == (2, 5)
    assert targets.wheel_glibc("m-1-py3-none-any.whl") is None


def _stand_in_wheel(directory: Path, filename: str, content: bytes) -> Path:
    """A wheel with METADATA and no dependencies; fixed timestamps, so equal content is equal bytes."""
    name, version = filename.split("-")[:2]
    path = directory / filename
    with zipfile.ZipFile(path, "w") as zf:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        zf.writestr(zipfile.ZipInfo(f"{name}-{version}.dist-info/METADATA"), metadata)
        zf.writestr(zipfile.ZipInfo(f"{name}/data"), content)
    return path


def _collect_stand_ins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dep: bytes | None
) -> wheels.Wheelhouse:
    """collect_wheels for 3.9 and 3.11 with downloads faked: `dep` is its content (None: per target)."""

    def download(
        target: targets.TargetSpec, app: Path, _req: object, dest: Path, _cwd: Path, *_more: object
    ) -> list[Path]:
        dest.mkdir(parents=True)
        content = target.python.encode() if dep is None else dep
        return [
            _stand_in_wheel(dest, app.name, b"app"),
            _stand_in_wheel(dest, "dep-1.0-py3-none-any.whl", content),
        ]

    monkeypatch.setattr(wheels, "download_target", download)
    chosen = targets.parse_targets(["3.9", "3.11"], ["x86_64"])
    return wheels.collect_wheels(
        Path("shop-0.1.0-py3-none-any.whl"), None, chosen, tmp_path, tmp_path, _quiet
    )


def test_a_wheel_several_targets_share_is_stored_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    house = _collect_stand_ins(tmp_path, monkeypatch, dep=b"one")
    assert [w.name for w in house.wheels()] == ["dep-1.0-py3-none-any.whl", "shop-0.1.0-py3-none-any.whl"]
    assert [len(lock.pins) for lock in house.locks] == [2, 2]


def test_one_wheel_name_with_two_contents_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BundleError, match=r"^dep-1.0-py3-none-any.whl: two different files under one name"):
        _collect_stand_ins(tmp_path, monkeypatch, dep=None)


def test_pip_errors_become_one_line_naming_package_and_target() -> None:
    target = targets.TargetSpec("3.9", "x86_64")
    output = (
        "WARNING: noise\nERROR: Could not find a version that satisfies the requirement docopt "
        "(from versions: none)\nERROR: No matching distribution found for docopt\n"
    )
    assert wheels.download_error(output, target).startswith("no usable wheel of docopt for cp39-x86_64")
    assert wheels.download_error("ERROR: ResolutionImpossible: x\n", target) == (
        "cp39-x86_64: pip download failed: ERROR: ResolutionImpossible: x"
    )


def test_a_flat_projects_wheel_holds_its_modules_and_templates_beside_them(tmp_path: Path) -> None:
    project = tmp_path / "gb"
    shutil.copytree(ADOPT_FIXTURE, project)
    spec = parse_spec({"service": {"name": "guestbook", "version": "0.1.0", "entry": "app:app"}})
    members = flatwheel.wheel_members(load_project(project), spec)
    assert [n for n in members if ".dist-info/" not in n] == ["app.py", "storage.py", "templates/index.html"]
    assert load_project(project).requirements == "requirements.txt"


def test_a_pyproject_with_only_tool_settings_is_bundled_as_the_flat_project_init_said(tmp_path: Path) -> None:
    """`[tool.ruff]` alone declares no build: requirements.txt and the modules count, as `init` reports."""
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    (tmp_path / "requirements.txt").write_text("flask\n")
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    project = load_project(tmp_path)
    assert (project.packaging, project.requirements) == (FLAT, "requirements.txt")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    project = load_project(tmp_path)
    assert (project.packaging, project.requirements) == (PACKAGED, None)
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    project = load_project(tmp_path)
    assert (project.packaging, project.requirements) == (PACKAGED, None)


def test_index_options_in_requirements_are_dropped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("flask\n")
    req = tmp_path / "requirements.txt"
    req.write_text("-r base.txt\n--index-url https://mirror.invalid/simple\nrequests==2.0  # pinned\n")
    notes = appwheel.sanitize_requirements(req, tmp_path / "clean.txt")
    assert notes == [
        "requirements.txt:2: --index-url ignored: pip's configuration decides where wheels come from"
    ]
    assert (tmp_path / "clean.txt").read_text() == f"-r {tmp_path / 'base.txt'}\nrequests==2.0  # pinned\n"


def test_source_time_comes_from_the_commit_or_source_date_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert source_info(tmp_path) == type(source_info(tmp_path))(commit=None, dirty=False, epoch=ZIP_EPOCH)
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    env = {**os.environ, "GIT_COMMITTER_DATE": "1700000000 +0000", "GIT_AUTHOR_DATE": "1700000000 +0000"}
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (tmp_path / "service.toml").write_text("x")
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    subprocess.run([*git, "add", "."], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True, env=env)
    info = source_info(tmp_path)
    assert info.commit and len(info.commit) == 40 and not info.dirty
    assert info.epoch == 1700000000 and info.built_at == "2023-11-14T22:13:20Z"
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "svc-0.1.0.pyz").write_text("a build output, untracked")
    assert source_info(tmp_path).dirty and not source_info(tmp_path, tmp_path / "dist").dirty
    (tmp_path / "service.toml").write_text("changed")
    assert source_info(tmp_path, tmp_path / "dist").dirty
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    assert source_info(tmp_path).epoch == 1800000000
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "soon")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        source_info(tmp_path)


def test_manifest_roundtrip_of_a_real_bundle(shop: tuple[Path, Path, Result]) -> None:
    raw = zipfile.ZipFile(shop[1]).read("manifest.json")
    manifest = Manifest.from_json(raw, "x")
    assert manifest.to_json() == raw
    assert manifest.spec["service"]["entry"] in ("shop:create_app()",)
