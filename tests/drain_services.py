"""Test services for deploys under load: the template pinned to one gunicorn, counting its POSTs.

`drain_service(FIXTURE, NAME, DEST)` writes `integrator new NAME DEST` plus the fixture of
tests/fixtures/drain/ (its README says what each adds); `post_ids(host, NAME)` counts the POST ids
the app logged in the host's journal; `unlimited_journal(host)` lifts journald's rate limit, which
would otherwise drop lines under load and make POSTs look lost. Used by tests/test_drain_e2e.py,
tests/test_python39_e2e.py and bench/drain.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from integrator.sandbox import Sandbox
from integrator.template.commands import new

FIXTURES = Path(__file__).parent / "fixtures" / "drain"
DRAIN_FIXTURES = ("gunicorn23", "gunicorn27")
TEMPLATE_DEPENDENCIES = 'dependencies = ["flask>=3.0"]'
JOURNALD_DROP_IN = "/etc/systemd/journald.conf.d/90-no-rate-limit.conf"


def drain_service(fixture: str, name: str, dest: Path) -> Path:
    """The template service NAME in DEST, its gunicorn pinned by FIXTURE, with POST /post."""
    if fixture not in DRAIN_FIXTURES:
        raise ValueError(f"{fixture!r}: not one of {', '.join(DRAIN_FIXTURES)}")
    result = new(name, dest)
    if result.exit_code != 0:
        raise RuntimeError("\n".join(result.lines))
    pins = [line.strip() for line in (FIXTURES / fixture / "requires.txt").read_text().splitlines()]
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    assert TEMPLATE_DEPENDENCIES in text, "the template's dependencies line changed"
    listed = ", ".join(json.dumps(dep) for dep in ["flask>=3.0", *filter(None, pins)])
    pyproject.write_text(text.replace(TEMPLATE_DEPENDENCIES, f"dependencies = [{listed}]"))
    views = dest / "src" / name / "views.py"
    views.write_text(views.read_text() + (FIXTURES / "post_route.txt").read_text())
    return dest


def pinned_gunicorn(fixture: str) -> str:
    """The gunicorn version FIXTURE pins (what its host's venv must hold)."""
    for line in (FIXTURES / fixture / "requires.txt").read_text().splitlines():
        if line.startswith("gunicorn=="):
            return line.split("==", 1)[1].strip()
    raise ValueError(f"{fixture}: pins no gunicorn")


def post_ids(box: Sandbox, name: str) -> Counter[str]:
    """How often the app logged each POST id (`{"post_id":"ID"}` lines of either slot's service,
    NAME-a and NAME-b, or of a NAME.service from before slots)."""
    units = [arg for unit in (f"{name}-a", f"{name}-b", name) for arg in ("-u", f"{unit}.service")]
    out = box.exec(["journalctl", *units, "-o", "cat", "--no-pager"], timeout=600)
    seen: Counter[str] = Counter()
    for line in out.stdout.decode(errors="replace").splitlines():
        if line.startswith('{"post_id":'):
            seen[json.loads(line)["post_id"]] += 1
    return seen


def unlimited_journal(box: Sandbox) -> None:
    """No journald rate limit on this host: under load it drops lines ("Suppressed N messages")."""
    box.exec(["mkdir", "-p", str(Path(JOURNALD_DROP_IN).parent)])
    box.exec(["tee", JOURNALD_DROP_IN], input=b"[Journal]\nRateLimitIntervalSec=0\nRateLimitBurst=0\n")
    box.exec(["systemctl", "restart", "systemd-journald"])
