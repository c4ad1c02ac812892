"""[static]: directories of the project packed as payload/static/DIR, served by nginx from the release.

Build side (bundle/static.py) and the rendered location (render/nginx_static.py); the rendered
site also goes through a real `nginx -t` with the other golden cases (tests/golden/static_files/).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from integrator.bundle.commands import bundle
from integrator.bundle.manifest import STATIC, extract_verified
from integrator.bundle.static import static_members
from integrator.errors import SpecError
from integrator.layout import Layout
from integrator.render.nginx_static import static_locations
from integrator.spec import parse_spec
from integrator.template.commands import init

from .render_checks import need_tool


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_each_directory_is_packed_whole_below_its_own_name(tmp_path: Path) -> None:
    root = tree(tmp_path, {"static/app.css": "a", "static/img/logo.svg": "b", "shop/static/x.js": "c"})
    members = static_members(root, [("/static/", "static"), ("/assets/", "shop/static")])
    assert {name: path.read_text() for name, path in members.items()} == {
        "payload/static/static/app.css": "a",
        "payload/static/static/img/logo.svg": "b",
        "payload/static/shop/static/x.js": "c",
    }


def test_a_symlink_is_refused_naming_it(tmp_path: Path) -> None:
    root = tree(tmp_path, {"static/app.css": "a"})
    os.symlink("/etc/passwd", root / "static" / "passwd")
    with pytest.raises(SpecError, match=r'^\[static\] "/static/" = "static": static/passwd is a symlink'):
        static_members(root, [("/static/", "static")])


@pytest.mark.parametrize(
    ("directory", "why"),
    [
        (
            "missing",
            r"missing does not exist \(a Django project fills it with `python manage.py collectstatic",
        ),
        ("outside", "is not a directory of the project"),
    ],
)
def test_a_directory_that_is_not_the_projects_is_refused(tmp_path: Path, directory: str, why: str) -> None:
    root = tree(tmp_path / "p", {"app.py": ""})
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "outside")
    with pytest.raises(SpecError, match=why):
        static_members(root, [("/static/", directory)])


def test_an_empty_directory_says_what_to_run_first(tmp_path: Path) -> None:
    (tmp_path / "staticfiles").mkdir()
    with pytest.raises(
        SpecError, match=r"holds no files \(a Django project runs `python manage.py collectstatic"
    ):
        static_members(tmp_path, [("/static/", "staticfiles")])


def test_a_name_the_host_would_refuse_is_refused_at_build_time(tmp_path: Path) -> None:
    root = tree(tmp_path, {"static/caf\u00e9.css": "a"})
    with pytest.raises(SpecError, match="non-ASCII"):
        static_members(root, [("/static/", "static")])


# --- the rendered location, served by a real nginx on 127.0.0.1 ----------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


@pytest.mark.root
def test_nginx_serves_the_release_files_with_caching_and_follows_no_symlink_below() -> None:
    """The location render/nginx_static.py writes, in a minimal nginx: `current` is followed (root's
    link), a symlink below the directory is not, only GET/HEAD, and the files carry Cache-Control."""
    nginx = need_tool("nginx", "bash scripts/install-nginx.sh")
    if os.geteuid() != 0:
        pytest.skip("nginx's workers read the files as another user: run as root")
    base = Path(tempfile.mkdtemp(prefix="integrator-static-", dir="/var/tmp"))
    try:
        spec = parse_spec(
            {"service": {"name": "demo", "version": "1", "entry": "a:app"}, "static": {"/static/": "static"}}
        )
        layout = Layout.for_spec(spec)
        root = base / "root"
        files = root / str(layout.releases).lstrip("/") / "r1" / STATIC / "static"
        (files / "css").mkdir(parents=True)
        (files / "css" / "app.css").write_text("body {}\n")
        os.symlink("/etc/hostname", files / "host.txt")
        os.symlink("releases/r1", root / str(layout.current).lstrip("/"))
        for path in [base, *base.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
        locations = "\n".join(static_locations(spec, layout)).replace(
            str(layout.root), f"{root}{layout.root}"
        )
        port = free_port()
        (base / "nginx.conf").write_text(
            f"pid {base}/nginx.pid;\nerror_log {base}/error.log;\nevents {{}}\nhttp {{\naccess_log off;\n"
            f"server {{\nlisten 127.0.0.1:{port};\n{locations}\nlocation / {{ return 418; }}\n}}\n}}\n"
        )
        subprocess.run([nginx, "-p", str(base), "-c", str(base / "nginx.conf")], check=True, timeout=30)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (base / "nginx.pid").exists():
                time.sleep(0.1)
            status, headers = get(port, "/static/css/app.css")
            assert (status, headers["cache-control"]) == (200, "max-age=3600")
            assert get(port, "/static/css/app.css", "HEAD")[0] == 200
            assert get(port, "/static/css/app.css", "POST")[0] == 403
            assert get(port, "/static/host.txt")[0] == 403  # a symlink out of the release
            assert get(port, "/static/")[0] == 404
            assert get(port, "/static/missing.css")[0] == 404
            assert get(port, "/other")[0] == 418  # everything else still goes where it did
        finally:
            os.kill(int((base / "nginx.pid").read_text()), signal.SIGTERM)
    finally:
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.network
def test_a_bundle_carries_the_static_files_and_a_host_unpacks_them_root_owned_read_only(
    tmp_path: Path,
) -> None:
    """init proposes [static] for flat_flask's static/; bundle packs it; verify and unpack accept it."""
    root = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "apps" / "flat_flask", tmp_path / "app"))
    assert init(root).data["static"] == {"/static/": "static"}
    result = bundle(root, ["3.11"], ["x86_64"], tmp_path / "dist", progress=lambda _: None)
    pyz = Path(str(result.data["path"]))
    assert f"{STATIC}/static/app.css" in zipfile.ZipFile(pyz).namelist()
    dest = tmp_path / "release"
    dest.mkdir()
    extract_verified(pyz, dest)
    unpacked = dest / STATIC / "static" / "app.css"
    assert unpacked.read_text() == "body { margin: 0 }\n"
    assert unpacked.stat().st_mode & 0o777 == 0o644 and unpacked.parent.stat().st_mode & 0o777 == 0o755
