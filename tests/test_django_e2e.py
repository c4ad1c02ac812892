"""A `django-admin startproject` project, adopted with `integrator init` and no edit, on a sandbox host.

The project is tests/fixtures/apps/django_site, copied as it is: init writes service.toml and the
settings overlay (template/django.py); then `bundle`, which runs init's `[package] build`
(`python manage.py collectstatic --noinput` with the overlay's settings) and its preflight (the
overlay gives it a throwaway key), and a plain deploy: no other command. The admin login page
answers over HTTPS through nginx, its CSS comes from nginx ([static]), the release hook's migrate
made the database in the state directory, and the key the app made there on its first start is
the same after a redeploy and a rollback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.spec import load_spec
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from integrator.template.commands import init
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, get, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

APP = Path(__file__).parent / "fixtures" / "apps" / "django_site"
NAME = "mysite"
OVERLAY = "mysite.integrator_settings"


@pytest.fixture(scope="module")
def django_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bundle of the untouched project: init, then bundle (its build step and preflight)."""
    root = tmp_path_factory.mktemp("django")
    project = Path(shutil.copytree(APP, root / "mysite"))
    init(project, name=NAME)
    spec = load_spec(project)
    assert dict(spec.env.vars) == {"DJANGO_SETTINGS_MODULE": OVERLAY, "DJANGO_ALLOWED_HOSTS": NAME}
    assert spec.http.health_path == "/admin/login/" and dict(spec.static.paths) == {"/static/": "staticfiles"}
    assert spec.deploy.release == ("django-admin", "migrate", "--noinput")
    assert spec.package.requires == ("tzdata",)  # the sandbox's minimal Debian has no zoneinfo
    assert spec.package.build == ("python", "manage.py", "collectstatic", "--noinput")
    assert not (project / "staticfiles").exists()
    bundle = _build(project, root / "dist")
    assert (project / "staticfiles" / "admin" / "css" / "base.css").is_file()  # bundle's build step
    assert not (project / "django_secret_key").exists()  # a build machine's key is never a file
    for fixture in APP.rglob("*"):  # no file of the project was changed
        if fixture.is_file():
            assert (project / fixture.relative_to(APP)).read_bytes() == fixture.read_bytes(), fixture
    return project, bundle


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def key_and_tables(box: Sandbox) -> str:
    """The key the app made in its state directory, and the tables migrate made there."""
    script = (
        "import hashlib, sqlite3; "
        "print(hashlib.sha256(open('/var/lib/mysite/django_secret_key', 'rb').read()).hexdigest(), "
        "sqlite3.connect('/var/lib/mysite/db.sqlite3').execute("
        "\"select count(*) from sqlite_master where name = 'auth_user'\").fetchone()[0])"
    )
    proc = sh(box, "python3", "-c", script)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().strip()


def test_the_admin_login_page_serves_over_https_with_its_static_files_from_nginx(
    box: Sandbox, django_bundle: tuple[Path, Path]
) -> None:
    ok(commands.deploy(DeployOptions(django_bundle[1]), SandboxTarget(box.name)))
    status, body, _ = get(box.address, "/admin/login/", NAME)
    assert status == 200 and "csrfmiddlewaretoken" in body and "/static/admin/css/base.css" in body
    status, css, headers = get(box.address, "/static/admin/css/base.css", NAME)
    assert status == 200 and "body" in css
    assert {k.lower(): v for k, v in headers.items()}.get("cache-control") == "max-age=3600"  # nginx's
    assert get(box.address, "/static/", NAME)[0] == 404


def test_the_state_the_app_wrote_survives_a_redeploy_and_a_rollback(
    box: Sandbox, django_bundle: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = django_bundle
    target = SandboxTarget(box.name)
    first = key_and_tables(box)
    assert first.endswith(" 1"), first  # the key exists and migrate made auth_user
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # a later build: another sha256, a new release
    ok(commands.deploy(DeployOptions(_build(project, project.parent / "later")), target))
    assert key_and_tables(box) == first
    ok(commands.rollback(NAME, target))
    assert key_and_tables(box) == first and get(box.address, "/admin/login/", NAME)[0] == 200
