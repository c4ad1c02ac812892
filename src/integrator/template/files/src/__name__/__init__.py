"""{{Name}}: a Flask service.

`create_app` is the application factory (as in the Flask tutorial): on a host gunicorn
calls it (`{{name}}:create_app()` in service.toml); tests call it with a test
configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

# Keep in step with pyproject.toml and service.toml (tests/test_app.py checks they agree).
__version__ = "{{version}}"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app.

    Settings come from environment variables prefixed `{{NAME}}_`
    (service.toml [env] on a host): `{{NAME}}_GREETING=hi` becomes
    `app.config["GREETING"]`. Values that parse as JSON (numbers, true/false) are
    converted. Tests pass `test_config` instead, so the environment of the machine
    running them cannot change their outcome.
    """
    app = Flask(__name__)
    app.config.from_mapping(GREETING="Hello from {{Name}}")
    if test_config is None:
        app.config.from_prefixed_env("{{NAME}}")
    else:
        app.config.from_mapping(test_config)

    from . import requestlog, views

    requestlog.init_app(app)
    app.register_blueprint(views.bp)
    return app
