"""What a deploy relies on: the pages, the health check, the request log, config and secrets."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from {{name}} import __version__, create_app
from {{name}}.secrets import MissingSecret, env_name, read_secret

PROJECT = Path(__file__).resolve().parent.parent


def test_index_names_service_version_and_host(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_json() == {
        "service": "{{name}}",
        "version": __version__,
        "host": socket.gethostname(),
        "greeting": "hello from the tests",
    }


def test_index_is_a_page_for_browsers(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b"hello from the tests" in response.data


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_one_json_log_line_per_request(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    response = client.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "abc-123"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["method"] == "GET" and entry["path"] == "/healthz" and entry["status"] == 200
    assert entry["remote_addr"] == "203.0.113.7"  # from nginx's X-Forwarded-For, via ProxyFix
    assert entry["request_id"] == "abc-123" == response.headers["X-Request-ID"]
    assert isinstance(entry["duration_ms"], (int, float)) and entry["duration_ms"] >= 0


def test_the_app_trusts_what_nginx_sets_and_nothing_more(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    """What nginx sends (render/nginx.py): Host set to the service's own name and port, one
    client address, the scheme; X-Forwarded-Prefix dropped. The app's URLs and log must follow
    exactly those (a non-443 port included), whatever else a client added."""
    app.add_url_rule("/where", "where", lambda: request.url_root)
    headers = {
        "Host": "{{name}}.example.com:8443",
        "X-Forwarded-For": "198.51.100.9, 203.0.113.7",  # only the last one is nginx's
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "{{name}}.example.com:8443",
        "X-Forwarded-Port": "8443",
        "X-Forwarded-Prefix": "/elsewhere",
    }
    response = app.test_client().get("/where", headers=headers)
    assert response.get_data(as_text=True) == "https://{{name}}.example.com:8443/"
    entry = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert entry["remote_addr"] == "203.0.113.7"
    assert entry["host"] == "{{name}}.example.com:8443"


def test_a_request_id_is_made_when_none_or_a_bad_one_arrives(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.get("/", headers={"X-Request-ID": "bad id\twith spaces"})
    entry = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])
    assert response.headers["X-Request-ID"] == entry["request_id"]


def test_config_comes_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("{{NAME}}_GREETING", "hello from the environment")
    client = create_app().test_client()
    assert client.get("/").get_json()["greeting"] == "hello from the environment"


def test_secret_from_systemd_credentials(tmp_path: Path) -> None:
    (tmp_path / "db_password").write_text("s3cret\n")
    assert read_secret("db_password", {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "s3cret"


def test_secret_from_environment_for_local_development() -> None:
    assert env_name("db_password") == "{{NAME}}_SECRET_DB_PASSWORD"
    assert read_secret("db_password", {"{{NAME}}_SECRET_DB_PASSWORD": "dev"}) == "dev"


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret) as error:
        read_secret("db_password", {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    message = str(error.value)
    assert str(tmp_path / "db_password") in message
    assert "{{NAME}}_SECRET_DB_PASSWORD" in message
    assert "--secret db_password=FILE" in message


def test_secret_names_cannot_escape_the_credentials_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_secret("../etc/passwd", {"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_version_is_the_same_everywhere() -> None:
    """pyproject.toml, service.toml and the package must agree, or a bundle lies about itself."""
    for file in ("pyproject.toml", "service.toml"):
        text = (PROJECT / file).read_text(encoding="utf-8")
        found = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
        assert found and found.group(1) == __version__, file
