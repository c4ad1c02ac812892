"""`init` for a Django project: the settings a host needs, in a module of their own, never an edit.

A project straight from `django-admin startproject` answers every request with 400 on a host
(ALLOWED_HOSTS is empty), keeps its key in the source, its database beside the code (read-only
on a host) and has no STATIC_ROOT. Production settings that import the base ones are Django's
own idiom; init writes such a module beside the project's settings (`integrator_settings.py`,
once: never over an existing file) and points gunicorn at it with `[env] DJANGO_SETTINGS_MODULE`
(the project's wsgi.py only sets a default), so `manage.py` on the developer's machine is
unchanged. What it sets (`OVERLAY`):
- SECRET_KEY: the credential `django_secret_key` when deployed with one (`[secrets]`,
  `--secret`), else a key made once on the host in the app's private state directory (0600);
  never in the source or the bundle. The build's preflight gets its own throwaway key there.
- ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS from `[env] DJANGO_ALLOWED_HOSTS` (init writes the
  service's server names), SECURE_PROXY_SSL_HEADER (nginx sets X-Forwarded-Proto), DEBUG off,
  errors to the journal.
- SQLite databases in the state directory (`[deploy] release` runs `django-admin migrate`
  before each release goes live), STATIC_ROOT `staticfiles/` beside manage.py unless set
  (`[static] "/static/" = "staticfiles"`, filled by `[package] build`: `bundle` runs
  `python manage.py collectstatic --noinput` with the overlay first), and
  `[package] requires = ["tzdata"]` unless the project lists it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..project.metadata import requirement_name
from ..project.model import Project

OVERLAY_NAME = "integrator_settings.py"
SECRET_NAME = "django_secret_key"
STATIC_DIR = "staticfiles"
MIGRATE = ("django-admin", "migrate", "--noinput")

OVERLAY = '''\
"""Settings for integrator hosts, written once by `integrator init` (docs/adopt.md, "Django").

The project's own settings, then what a host needs. Edit freely: init never overwrites this
file. gunicorn and `integrator run` use it through [env] DJANGO_SETTINGS_MODULE in
service.toml; `manage.py` on your machine keeps using {base}.
"""

import os
import secrets
from pathlib import Path

from {base} import *  # noqa: F403

_BASE = Path(globals().get("BASE_DIR") or Path(__file__).resolve().parent.parent)  # str in older projects
STATE = Path(os.environ.get("STATE_DIRECTORY", _BASE))  # the app's only writable directory


def _secret_key():
    """The credential {secret} when deployed with one, else a key made once in the state
    directory (0600, the app's user only); never in the source, the project or the bundle."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "{secret}").is_file():
        return (Path(credentials) / "{secret}").read_text().strip()
    if "STATE_DIRECTORY" not in os.environ:  # manage.py on a build machine: a key for this run
        return secrets.token_urlsafe(50)  # only, never a file in the project (it would be shipped)
    path = STATE / "{secret}"
    if not path.exists():  # the first worker writes it whole, then links it into place
        tmp = STATE / f".{secret}.{{os.getpid()}}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = False
# The service's [http] server_names (nginx answers no other); a wildcard *.example.com is .example.com.
_hosts = os.environ.get("DJANGO_ALLOWED_HOSTS", "").split()
ALLOWED_HOSTS = [h[1:] if h.startswith("*.") else h for h in _hosts]
CSRF_TRUSTED_ORIGINS = ["https://" + ("*" + h if h.startswith(".") else h) for h in ALLOWED_HOSTS]
# nginx terminates TLS and sets X-Forwarded-Proto from the connection (never from the client):
# request.is_secure() is true, redirects and CSRF checks use https (the template's ProxyFix).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
STATIC_ROOT = globals().get("STATIC_ROOT") or _BASE / "{static}"  # collectstatic fills it; nginx serves it
for _database in DATABASES.values():  # noqa: F405
    if _database.get("ENGINE") == "django.db.backends.sqlite3":
        _database["NAME"] = STATE / Path(str(_database["NAME"])).name
# With DEBUG off Django mails errors to ADMINS; send them to stderr, the journal (`integrator logs`).
LOGGING = {{
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "root": {{"handlers": ["console"], "level": "WARNING"}},
}}
'''


def overlay_text(settings_module: str) -> str:
    return OVERLAY.format(base=settings_module, secret=SECRET_NAME, static=STATIC_DIR)


def overlay_path(project: Project, settings_module: str) -> PurePosixPath | None:
    """Where the overlay goes (beside the settings module, relative to the project), or None
    when the settings module is not one of the project's."""
    files = dict(project.module_files())
    if settings_module not in files:
        return None
    prefix = PurePosixPath(project.source_root) if project.source_root else PurePosixPath()
    return prefix / files[settings_module].parent / OVERLAY_NAME


def overlay_module(settings_module: str) -> str:
    package = settings_module.rpartition(".")[0]
    return f"{package}.{OVERLAY_NAME[:-3]}" if package else OVERLAY_NAME[:-3]


def admin_login(project: Project) -> str | None:
    """`/admin/login/` (or under the prefix the URLconf gives admin.site.urls), if it routes it:
    a page a fresh project answers 200 without a database, so a health path."""
    pattern = re.compile(r"""path\(\s*r?['"]([^'"]*)['"]\s*,\s*admin\.site\.urls""")
    prefix = PurePosixPath(project.source_root) if project.source_root else PurePosixPath()
    for _, rel in project.module_files():
        try:
            text = (project.root / prefix / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        match = pattern.search(text)
        if match:
            route = match.group(1).strip("^$").strip("/")
            return f"/{route}/login/" if route else "/login/"
    return None


def collectstatic(project: Project) -> list[str] | None:
    """`python manage.py collectstatic --noinput` for the project's manage.py nearest its root
    (`bundle` runs it there, [package] build), or None when it has none."""
    prefix = PurePosixPath(project.source_root) if project.source_root else PurePosixPath()
    found = sorted((prefix / p for p in project.shipped if p.name == "manage.py"), key=lambda p: len(p.parts))
    return ["python", found[0].as_posix(), "collectstatic", "--noinput"] if found else None


def django_tables(
    project: Project, settings_module: str, server_names: tuple[str, ...]
) -> dict[str, dict[str, object]]:
    """service.toml tables for a Django project whose overlay is `overlay_module(settings_module)`."""
    tables: dict[str, dict[str, object]] = {
        "env": {
            "DJANGO_SETTINGS_MODULE": overlay_module(settings_module),
            "DJANGO_ALLOWED_HOSTS": " ".join(server_names),
        },
        "deploy": {"release": list(MIGRATE)},
        "static": {"/static/": STATIC_DIR},
    }
    package: dict[str, object] = {}
    if "tzdata" not in {requirement_name(d) for d in project.dependencies}:
        # A host without the system time-zone database (a minimal Debian has no /usr/share/zoneinfo)
        # would answer every page that shows a time with 500: No module named 'tzdata'.
        package["requires"] = ["tzdata"]
    manage = collectstatic(project)
    if manage:
        package["build"] = manage
    if package:
        tables["package"] = package
    health = admin_login(project)
    if health:
        tables["http"] = {"health_path": health}
    return tables
