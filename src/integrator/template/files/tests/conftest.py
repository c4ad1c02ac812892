"""Fixtures as in the Flask tutorial: every test gets a fresh app built by the factory."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from {{name}} import create_app


@pytest.fixture
def app() -> Flask:
    return create_app({"TESTING": True, "GREETING": "hello from the tests"})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
