"""The service's pages: `/` says who answered, `/healthz` says the process can serve."""

from __future__ import annotations

import socket
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from markupsafe import escape

from . import __version__

bp = Blueprint("main", __name__)


def about() -> dict[str, Any]:
    """Which service, which version and which host answered: what you want to know after a deploy."""
    return {
        "service": "{{name}}",
        "version": __version__,
        "host": socket.gethostname(),
        "greeting": current_app.config["GREETING"],
    }


@bp.get("/")
def index() -> ResponseReturnValue:
    """JSON for programs; a small HTML page when a browser asks for one."""
    info = about()
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in info.items())
        return (
            "<!doctype html><html lang=en><meta charset=utf-8>"
            f"<title>{escape(info['service'])}</title>"
            f"<h1>{escape(info['greeting'])}</h1><table>{rows}</table></html>"
        )
    return jsonify(info)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Checked through nginx before a release goes live: cheap, no database, no outside calls.

    If it answered only when every dependency were up, one slow database would roll back
    every deploy; check dependencies in their own endpoint if you need to.
    """
    return jsonify(status="ok")
