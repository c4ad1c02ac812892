"""`init` adopts a Django project without an edit: the settings overlay it writes (template/django.py)
and the service.toml tables that use it. The overlay is plain Python over the project's settings,
so it is imported here for real (in a subprocess, with a stand-in settings module: no Django)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from integrator.errors import TemplateError
from integrator.spec import load_spec
from integrator.template.commands import init
from integrator.template.django import overlay_text

APP = Path(__file__).parent / "fixtures" / "apps" / "django_site"
BASE = """\
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "django-insecure-in-the-source"
DEBUG = True
ALLOWED_HOSTS = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"},
             "other": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"}}
"""
SHOW = (
    "import json, mysite.integrator_settings as s; print(json.dumps({k: str(getattr(s, k)) for k in "
    "('SECRET_KEY', 'DEBUG', 'ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'STATIC_ROOT', "
    "'SECURE_PROXY_SSL_HEADER')} | {'db': str(s.DATABASES['default']['NAME']), "
    "'other': s.DATABASES['other']['NAME']}))"
)


def settings_of(root: Path, **env: str) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=root,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(proc.stdout))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "mysite").mkdir(parents=True)
    (root / "mysite" / "__init__.py").write_text("")
    (root / "mysite" / "settings.py").write_text(BASE)
    (root / "mysite" / "integrator_settings.py").write_text(overlay_text("mysite.settings"))
    return root


def test_on_a_host_the_key_is_made_once_in_the_state_directory_and_kept(site: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = {"STATE_DIRECTORY": str(state), "DJANGO_ALLOWED_HOSTS": "shop.example *.example.org"}
    first = settings_of(site, **env)
    key = state / "django_secret_key"
    assert first["SECRET_KEY"] == key.read_text() and len(first["SECRET_KEY"]) > 50
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and sorted(os.listdir(state)) == ["django_secret_key"]
    assert settings_of(site, **env)["SECRET_KEY"] == first["SECRET_KEY"]  # the next start reads it
    assert first["DEBUG"] == "False"
    assert first["ALLOWED_HOSTS"] == "['shop.example', '.example.org']"
    assert first["CSRF_TRUSTED_ORIGINS"] == "['https://shop.example', 'https://*.example.org']"
    assert first["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert first["STATIC_ROOT"] == str(site / "staticfiles")
    assert first["db"] == str(state / "db.sqlite3") and first["other"] == "shop"  # only SQLite moves


def test_a_deployed_credential_is_the_key_and_a_build_machine_writes_none(site: Path, tmp_path: Path) -> None:
    credentials, state = tmp_path / "credentials", tmp_path / "state"
    credentials.mkdir()
    state.mkdir()
    (credentials / "django_secret_key").write_text("from-the-operator\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials), "STATE_DIRECTORY": str(state)}
    assert settings_of(site, **env)["SECRET_KEY"] == "from-the-operator"
    assert not (state / "django_secret_key").exists()
    one, two = settings_of(site)["SECRET_KEY"], settings_of(site)["SECRET_KEY"]  # manage.py collectstatic
    assert one != two and not list(site.rglob("django_secret_key"))  # never a file the bundle would ship


def test_init_writes_the_overlay_and_the_tables_that_use_it(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APP, tmp_path / "mysite"))
    result = init(root, name="mysite")
    spec = load_spec(root)
    assert (root / "mysite" / "integrator_settings.py").read_text() == overlay_text("mysite.settings")
    assert dict(spec.env.vars) == {
        "DJANGO_SETTINGS_MODULE": "mysite.integrator_settings",
        "DJANGO_ALLOWED_HOSTS": "mysite",
    }
    assert spec.http.health_path == "/admin/login/"  # from urls.py: path('admin/', admin.site.urls)
    assert spec.deploy.release == ("django-admin", "migrate", "--noinput")
    assert dict(spec.static.paths) == {"/static/": "staticfiles"}
    assert spec.package.requires == ("tzdata",)  # requirements.txt lists only Django
    assert not result.warnings, result.warnings
    for fixture in APP.rglob("*"):  # nothing of the project changed
        if fixture.is_file():
            assert (root / fixture.relative_to(APP)).read_bytes() == fixture.read_bytes(), fixture


def test_an_overlay_of_the_users_is_kept_and_a_name_django_refuses_is_warned(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APP, tmp_path / "django_site"))
    (root / "mysite" / "integrator_settings.py").write_text("from mysite.settings import *  # mine\n")
    result = init(root)
    assert (root / "mysite" / "integrator_settings.py").read_text().endswith("# mine\n")
    assert any("kept, not overwritten" in line for line in result.lines)
    assert any("Django refuses a Host with '_'" in w for w in result.warnings)
    with pytest.raises(TemplateError, match="already exists"):
        init(root)
