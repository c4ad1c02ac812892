"""A `django-admin startproject` project, adopted as docs/adopt.md says, served on a sandbox host.

The project is tests/fixtures/apps/django_site; the recipe's settings and service.toml lines are
applied to a copy as a user would, `collectstatic` runs in a venv with Django, then `bundle
--no-preflight` (the key is a credential only the host has) and a deploy with `--secret`. The admin
login page answers over HTTPS through nginx, and its CSS comes from nginx ([static]), not Django.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.project.metadata import parse_toml
from integrator.sandbox import Sandbox
from integrator.spec import dump_spec_toml, parse_spec
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from integrator.template.commands import init
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, get, ok

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

APP = Path(__file__).parent / "fixtures" / "apps" / "django_site"
NAME = "mysite.example.com"
SETTINGS = {  # docs/adopt.md, "Django": what the recipe changes in a fresh startproject
    "from pathlib import Path\n": "import os\nfrom pathlib import Path\n",
    "SECRET_KEY = 'django-insecure-fixture-not-a-real-key'": (
        'SECRET_KEY = (Path(os.environ["CREDENTIALS_DIRECTORY"]) / "django_secret_key").read_text().strip()'
    ),
    "DEBUG = True": (
        "DEBUG = False\n# Errors to stderr, the journal (`integrator logs NAME`), not to ADMINS' mail.\n"
        'LOGGING = {"version": 1, "disable_existing_loggers": False, "handlers": {"console": '
        '{"class": "logging.StreamHandler"}}, "root": {"handlers": ["console"], "level": "WARNING"}}'
    ),
    "ALLOWED_HOSTS = []": (
        f'ALLOWED_HOSTS = ["{NAME}"]\nCSRF_TRUSTED_ORIGINS = ["https://{NAME}"]\n'
        'SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")'
    ),
    "STATIC_URL = 'static/'": "STATIC_URL = 'static/'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'",
    "'NAME': BASE_DIR / 'db.sqlite3',": (
        "'NAME': Path(os.environ.get('STATE_DIRECTORY', BASE_DIR)) / 'db.sqlite3',"
    ),
}
SERVICE = {  # and in service.toml
    "http": {"server_names": [NAME], "health_path": "/admin/login/"},
    "secrets": {"files": ["django_secret_key"]},
    "static": {"/static/": "staticfiles"},
}


@pytest.fixture(scope="module")
def django_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, the key file): the recipe applied, collectstatic run, bundled without a preflight."""
    root = tmp_path_factory.mktemp("django")
    project = Path(shutil.copytree(APP, root / "mysite"))
    settings = project / "mysite" / "settings.py"
    text = settings.read_text()
    for old, new in SETTINGS.items():
        assert old in text, old
        text = text.replace(old, new)
    settings.write_text(text)
    # A host may have no /usr/share/zoneinfo (the sandbox's minimal Debian has none): Django's
    # timezone support then needs the tzdata package in the app's own venv (docs/adopt.md).
    (project / "requirements.txt").write_text((APP / "requirements.txt").read_text() + "tzdata\n")
    init(project, name="mysite")
    data = parse_toml((project / "service.toml").read_text(), source="service.toml")
    for table, values in SERVICE.items():
        data.setdefault(table, {}).update(values)
    (project / "service.toml").write_text(dump_spec_toml(parse_spec(data)))
    key = root / "django_secret_key"
    key.write_text(secrets.token_urlsafe(50) + "\n")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "Django>=4.2,<6"], check=True, timeout=600)
    subprocess.run(
        [str(venv / "bin" / "python"), "manage.py", "collectstatic", "--noinput"],
        cwd=project,
        env={"CREDENTIALS_DIRECTORY": str(root), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=300,
    )
    return _build(project, root / "dist", preflight=False), key


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def test_the_admin_login_page_serves_over_https_with_its_static_files_from_nginx(
    box: Sandbox, django_bundle: tuple[Path, Path]
) -> None:
    bundle, key = django_bundle
    ok(commands.deploy(DeployOptions(bundle, secrets={"django_secret_key": key}), SandboxTarget(box.name)))
    status, body, _ = get(box.address, "/admin/login/", NAME)
    assert status == 200 and "csrfmiddlewaretoken" in body and "/static/admin/css/base.css" in body
    status, css, headers = get(box.address, "/static/admin/css/base.css", NAME)
    assert status == 200 and "body" in css
    assert {k.lower(): v for k, v in headers.items()}.get("cache-control") == "max-age=3600"  # nginx's
    assert get(box.address, "/static/", NAME)[0] == 404
