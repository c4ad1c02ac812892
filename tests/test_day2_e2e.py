"""Day-2 operations end to end on one sandbox host (issue 10 items 5 and 6): the site's nginx
lines in the journal next to the app's.

The steps share one host and one service and build on each other. Traffic goes only to the
sandbox's address.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, get, ok

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

NAME = "edge"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("day2")
    return _build(_new_service(NAME, root / NAME), root / "dist")


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox, bundle: Path) -> Sandbox:
    box = make_module_sandbox()
    ok(commands.deploy(bundle, SandboxTarget(box.name)))
    return box


def _messages(result: Result) -> list[str]:
    """The MESSAGE of each journal line (`-o short`: `date host tag[pid]: message`)."""
    return [line.split("]: ", 1)[1] for line in result.data["journal"] if "]: " in line]


def _access_lines(box: Sandbox, source: str, uri: str, seconds: float = 5) -> list[dict[str, object]]:
    """The JSON access lines for `uri` that `logs --source` shows, waiting (bounded) for journald."""
    deadline = time.monotonic() + seconds
    while True:
        result = ok(commands.logs(NAME, SandboxTarget(box.name), source, lines=200))
        found = [json.loads(m) for m in _messages(result) if m.startswith("{") and uri in m]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_request_is_in_the_journal_as_json_under_the_service(box: Sandbox) -> None:
    uri = "/?probe=day2-logs"
    status, _, _ = get(box.address, uri, NAME, headers={"User-Agent": 'probe "quoted"'})
    assert status == 200
    [line] = _access_lines(box, "nginx", uri)
    assert line["status"] == 200 and line["method"] == "GET" and line["host"] == NAME
    assert line["user_agent"] == 'probe "quoted"' and line["tls"] in ("TLSv1.2", "TLSv1.3")
    assert line["upstream_status"] == "200"
    # The redirect server logs too (plain HTTP, no TLS).
    assert get(box.address, "/?probe=day2-http", NAME, https=False)[0] == 301
    [plain] = _access_lines(box, "nginx", "/?probe=day2-http")
    assert plain["status"] == 301 and plain["tls"] == ""


def test_sources_pick_the_app_nginx_or_both_in_time_order(box: Sandbox) -> None:
    target = SandboxTarget(box.name)
    app = _messages(ok(commands.logs(NAME, target, "app", lines=200)))
    nginx = _messages(ok(commands.logs(NAME, target, "nginx", lines=200)))
    both = ok(commands.logs(NAME, target, "all", lines=400))
    assert app and not any(m.startswith('{"time"') for m in app)  # gunicorn's lines, no access line
    assert nginx and all(m.startswith('{"time"') for m in nginx)
    merged = _messages(both)
    assert sorted(merged) == sorted(app + nginx)
    # One journal query, so one time order: gunicorn booted before nginx passed it a request.
    booted = next(i for i, m in enumerate(merged) if "Booting worker" in m)
    assert booted < next(i for i, m in enumerate(merged) if "day2-logs" in m)


def test_a_local_user_cannot_forge_the_sites_lines(box: Sandbox) -> None:
    """Anyone may log with the tag; only nginx.service's lines count as the site's."""
    message = '{"time":"forged","uri":"/?probe=forged"}'
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    forged = box.exec([*as_nobody, "logger", "-t", NAME, message], check=False)
    assert forged.returncode == 0, forged.stderr
    time.sleep(0.5)
    assert _access_lines(box, "nginx", "/?probe=forged", seconds=1) == []
