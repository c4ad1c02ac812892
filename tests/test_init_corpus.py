"""`integrator init` over a corpus of app layouts: data in (tests/fixtures/apps/<case>/), expected out.

Each case's golden files are in tests/golden/init/<case>/: `output.txt` (exit code, then what init
printed, with the temporary directory shown as <root>) and, when init succeeds, the `service.toml`
it wrote. `UPDATE_GOLDEN=1 pytest tests/test_init_corpus.py` rewrites them; review the diff by eye.
The Procfile syntaxes of gunicorn, waitress-serve and uwsgi are checked one by one below.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from integrator.cli import main
from integrator.errors import TemplateError
from integrator.template.commands import init
from integrator.template.procfile import procfile_entry

APPS = Path(__file__).parent / "fixtures" / "apps"
GOLDEN = Path(__file__).parent / "golden" / "init"
CASES = sorted(p.name for p in APPS.iterdir() if p.is_dir())


def run_init(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str | None]:
    root = Path(shutil.copytree(APPS / case, tmp_path / case))
    code = main(["init", "--no-probe", str(root)])  # no venv in the fixtures: read, never install
    captured = capsys.readouterr()
    output = f"exit {code}\n{captured.out}{captured.err}".replace(str(root), "<root>")
    spec = root / "service.toml"
    return output, spec.read_text(encoding="utf-8") if spec.exists() else None


@pytest.mark.parametrize("case", CASES)
def test_init_golden(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output, spec = run_init(case, tmp_path, capsys)
    golden = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.mkdir(parents=True, exist_ok=True)
        (golden / "output.txt").write_text(output, encoding="utf-8")
        (golden / "service.toml").unlink(missing_ok=True)
        if spec is not None:
            (golden / "service.toml").write_text(spec, encoding="utf-8")
    assert output == (golden / "output.txt").read_text(encoding="utf-8"), f"{case}: output differs"
    expected = golden / "service.toml"
    wanted = expected.read_text(encoding="utf-8") if expected.exists() else None
    assert spec == wanted, f"{case}: service.toml differs"


# --- what the golden files mean, said once more in words ---------------------------------------


def test_ambiguous_lists_every_candidate_with_its_entry(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APPS / "ambiguous", tmp_path / "ambiguous"))
    with pytest.raises(TemplateError) as exc:
        init(root)
    assert "--entry admin:app (admin.py)" in exc.value.message
    assert "--entry public:application (public.py)" in exc.value.message


def test_factory_with_arguments_is_refused_saying_why_and_what_to_do(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APPS / "factory_args", tmp_path / "factory_args"))
    wanted = r"create_app\(\) needs arguments \(config_name\).*--entry wsgi:app"
    with pytest.raises(TemplateError, match=wanted):
        init(root)
    assert not (root / "service.toml").exists()
    (root / "app.py").write_text(
        "import os\nfrom shop import create_app\napp = create_app(os.environ['CONFIG'])\n"
    )
    assert init(root).data["entry"] == "app:app"  # what the refusal asks for, in any module name


def test_an_alias_of_something_that_is_not_wsgi_is_not_an_app(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("from celery import Celery\ncelery = Celery()\napplication = celery\n")
    (tmp_path / "web.py").write_text("import flask\napp = flask.Flask(__name__)\n")
    assert init(tmp_path, name="svc").data["candidates"] == ["web:app"]


def test_poetry_metadata_gives_name_version_and_dependencies(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APPS / "poetry", tmp_path / "poetry"))
    data = init(root).data
    assert (data["name"], data["version"], data["requires_python"]) == ("note_board", "0.3.1", "^3.10")
    assert data["dependencies"] == ["flask ^3.0", "gunicorn >=22"]


def test_django_settings_module_is_found(tmp_path: Path) -> None:
    root = Path(shutil.copytree(APPS / "django_site", tmp_path / "django_site"))
    data = init(root).data
    assert data["django_settings"] == "mysite.settings"
    assert data["candidates"] == ["mysite.wsgi:application"]  # asgi.py's application is not WSGI


def test_entry_naming_a_missing_module_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(shutil.copytree(APPS / "flat_flask", tmp_path / "flat_flask"))
    assert main(["init", str(root), "--entry", "ap:app"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no module 'ap'" in err and "app" in err
    assert not (root / "service.toml").exists()
    django = Path(shutil.copytree(APPS / "django_site", tmp_path / "django_site"))
    assert (
        main(["init", str(django), "--no-probe", "--entry", "mysite.wsgi:application"]) == 0
    )  # a submodule is fine
    assert main(["init", str(tmp_path / "flat_flask"), "--entry", "app.views:app"]) == 2


def test_service_name_equal_to_a_dependency_is_refused(tmp_path: Path) -> None:
    """A flat project's wheel is named after the service: `django` would stand in for Django."""
    root = Path(shutil.copytree(APPS / "django_site", tmp_path / "django"))
    with pytest.raises(TemplateError, match=r"'django' is also the name of a dependency \(Django"):
        init(root)
    assert init(root, name="mysite").data["name"] == "mysite"


def test_reexport_of_a_recognised_app_is_the_same_app(tmp_path: Path) -> None:
    """`from shop import app` in wsgi.py and views.py's `from . import app` are shop's one app."""
    files = {
        "shop/__init__.py": "from flask import Flask\napp = Flask(__name__)\nfrom . import views\n",
        "shop/views.py": "from . import app\n\n@app.get('/healthz')\ndef h():\n    return 'ok'\n",
        "wsgi.py": "from shop import app\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    data = init(tmp_path, name="svc").data
    assert data["entry"] == "shop:app"
    assert sorted(data["candidates"]) == ["shop.views:app", "shop:app", "wsgi:app"]


def test_procfile_factory_and_its_definition_are_one_app(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("import flask\ndef create_app():\n    return flask.Flask(__name__)\n")
    procfile = "release: flask db upgrade\nweb: waitress-serve --call hello:create_app\n"
    (tmp_path / "Procfile").write_text(procfile)
    data = init(tmp_path, name="svc").data
    assert data["entry"] == "hello:create_app()"
    assert sorted(data["candidates"]) == ["hello:create_app()", "hello:create_app()"]


@pytest.mark.parametrize(
    ("command", "entry"),
    [
        ("gunicorn main:server", "main:server"),
        ("gunicorn -b 0.0.0.0:$PORT --workers 3 shop.wsgi:app", "shop.wsgi:app"),
        ("gunicorn --bind=:$PORT -k gthread 'shop:create_app()'", "shop:create_app()"),
        ("python -m gunicorn wsgi:application --log-file -", "wsgi:application"),
        ("PYTHONUNBUFFERED=1 exec gunicorn app:app", "app:app"),
        ("waitress-serve --port=$PORT --call hello:create_app", "hello:create_app()"),
        ("waitress-serve --listen=*:8080 hello:app", "hello:app"),
        ("uwsgi --http :$PORT --module mysite.wsgi:application", "mysite.wsgi:application"),
        ("uwsgi --http :$PORT -w mysite.wsgi", "mysite.wsgi:application"),
        ("uwsgi --http-socket :$PORT --wsgi-file app.py --callable app", "app:app"),
        ("uwsgi --module=shop.wsgi --callable=app --master", "shop.wsgi:app"),
    ],
)
def test_procfile_syntaxes(command: str, entry: str) -> None:
    assert procfile_entry(command) == (entry, "")


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("uvicorn main:app --port $PORT", "ASGI"),
        ("python app.py", "not gunicorn, waitress-serve or uwsgi"),
        ("gunicorn -c gunicorn.conf.py", "no MODULE:APP"),
        ("gunicorn 'unterminated", "not parsed"),
    ],
)
def test_procfile_lines_without_a_wsgi_entry_say_why(command: str, why: str) -> None:
    entry, reason = procfile_entry(command)
    assert entry is None and why in reason


def test_a_health_path_no_route_was_seen_for_is_warned(tmp_path: Path) -> None:
    """The first deploy would fail with 404 on the host: say so at init."""
    root = Path(shutil.copytree(APPS / "poetry", tmp_path / "poetry"))
    assert any("no route /healthz seen in the project" in w for w in init(root).warnings)
    reexport = Path(shutil.copytree(APPS / "wsgi_reexport", tmp_path / "wsgi_reexport"))
    assert not any("no route" in w for w in init(reexport).warnings)  # add_url_rule("/healthz", ...)
