"""Drain-first deploys under load, on real-systemd sandbox hosts (issue 11 goal 1).

Cases (`CASES`): the template service pinned to gunicorn 27 and to gunicorn 23 on the module's
Debian host (Python 3.11), and pinned to gunicorn 23 on a host whose only `python3` is 3.9 (RHEL
9's layout, tests/py39host.py, a second module-scoped host), where the bundle's cp39 target runs.
While `wrk` (Debian's package, from this machine, over the host's veth) keeps 16 keep-alive HTTPS
connections busy with GET / and POST /post (each POST a unique id that the app logs once:
tests/drain_services.py), v1 is deployed, then v2, then rolled back. Counted, untimed: every answer
200/201 (no 5xx), no connect/read/write/timeout error (nginx is not reloaded: its workers are the
same before and after, so no keep-alive client connection is closed), every acknowledged POST id
in the journal exactly once (none lost, none duplicated), the version switched, the serving link
repointed, the old slot's gunicorn gone and its socket stopped. The pause is measured by bench/,
never asserted here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from integrator.bundle.commands import bundle
from integrator.host.deploy_options import DeployOptions
from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.drain_services import drain_service, pinned_gunicorn, post_ids, unlimited_journal
from tests.py39host import python39_host  # noqa: F401  (the 3.9 case's module-scoped host)
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _set_version, ok, version, wait_serving

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

# (case id, fixture of tests/fixtures/drain, service name, the Python the bundle is built for)
CASES = [
    ("gunicorn27", "gunicorn27", "drain27", "3.11"),
    ("gunicorn23", "gunicorn23", "drain23", "3.11"),
    ("python39-gunicorn23", "gunicorn23", "drain39", "3.9"),
]
LUA = Path(__file__).parent / "wrk_drain.lua"
CONNECTIONS = 16  # keep-alive HTTPS connections, as issue 11 measures
WRK_LIMIT_S = 600  # wrk's own bound; it is stopped (SIGINT) as soon as the deploys are done


@dataclass(frozen=True)
class Load:
    """What the clients saw: from wrk's summary line and each thread's file."""

    errors: dict[str, int]
    sent: list[str]
    answered: list[str]
    versions: Counter[str]
    bad: list[str]


@pytest.fixture(scope="module")
def host(make_module_sandbox: MakeSandbox) -> Sandbox:
    box = make_module_sandbox()
    unlimited_journal(box)
    return box


def _build(src: Path, out: Path, python: str) -> Path:
    result = bundle(src, pythons=[python], platforms=["x86_64"], output=out, sign_key=None)
    assert result.exit_code == 0, result.lines
    return next(out.glob("*.pyz"))


def bundles(fixture: str, name: str, python: str, root: Path) -> tuple[Path, Path]:
    """v1 and v2 of the service pinned by `fixture`, for `python`."""
    src = drain_service(fixture, name, root / name)
    v1 = _build(src, root / "v1", python)
    _set_version(src, "0.1.0", "0.2.0")
    return v1, _build(src, root / "v2", python)


def start_wrk(address: str, name: str, workdir: Path) -> subprocess.Popen[bytes]:
    """wrk in a private mount namespace whose /etc/hosts names the sandbox host (the site wants
    its name in TLS SNI, and wrk takes SNI from the URL): this machine's /etc/hosts is untouched."""
    assert address.startswith("10."), address
    hosts = workdir / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{address} {name}\n")
    wrk = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{WRK_LIMIT_S}s", "-s", str(LUA), f"https://{name}/",
           "--", name, str(workdir / "load"), os.urandom(4).hex()]  # fmt: skip
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(hosts), *wrk]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_wrk(proc: subprocess.Popen[bytes], workdir: Path) -> Load:
    proc.send_signal(signal.SIGINT)  # wrk stops, then runs done(): the files below
    out, err = proc.communicate(timeout=120)
    summary = [line for line in out.decode().splitlines() if line.startswith("errors ")]
    assert summary, (out.decode(), err.decode())
    errors = {k: int(v) for k, v in (kv.split("=") for kv in summary[0].split()[1:])}
    sent, answered, bad, versions = [], [], [], Counter[str]()
    for path in workdir.glob("load.*"):
        for line in path.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "sent":
                sent.append(rest)
            elif kind == "answered":
                answered.append(rest)
            elif kind == "version":
                name, count = rest.split()
                versions[name] += int(count)
            elif kind == "bad":
                bad.append(rest)
    return Load(errors, sent, answered, versions, bad)


def serving_slot(box: Sandbox, name: str) -> str:
    site = box.exec(["cat", f"/etc/nginx/conf.d/{name}.conf"]).stdout.decode()
    assert f"server unix:/opt/{name}/serving.sock;" in site, site
    link = box.exec(["readlink", f"/opt/{name}/serving.sock"]).stdout.decode().strip()
    slots = [s for s in ("a", "b") if link == f"/run/{name}/gunicorn-{s}.sock"]
    assert len(slots) == 1, link
    return slots[0]


def nginx_workers(box: Sandbox) -> set[str]:
    master = main_pid(box, "nginx.service")
    return set(box.exec(["pgrep", "-P", str(master)]).stdout.decode().split())


def main_pid(box: Sandbox, unit: str) -> int:
    return int(box.exec(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout)


def active(box: Sandbox, unit: str) -> str:
    return box.exec(["systemctl", "is-active", unit], check=False).stdout.decode().strip()


def switch(box: Sandbox, name: str, action: Callable[[], Result]) -> tuple[str, str]:
    """Run a deploy or rollback; check the old slot is gone: gunicorn exited, socket stopped."""
    before = serving_slot(box, name)
    old_pid = main_pid(box, f"{name}-{before}.service")
    assert old_pid > 0
    ok(action())
    after = serving_slot(box, name)
    assert after != before
    assert box.exec(["test", "-e", f"/proc/{old_pid}"], check=False).returncode != 0, (
        "old gunicorn still runs"
    )
    assert active(box, f"{name}-{before}.service") == "inactive"
    assert active(box, f"{name}-{before}.socket") == "inactive"
    assert active(box, f"{name}-{after}.service") == "active"
    return before, after


@pytest.mark.parametrize(("fixture", "name", "python"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_deploy_and_rollback_under_load_fail_and_duplicate_nothing(
    request: pytest.FixtureRequest, fixture: str, name: str, python: str, tmp_path: Path
) -> None:
    if python == "3.9":
        box = request.getfixturevalue("python39_host")
        unlimited_journal(box)
    else:
        box = request.getfixturevalue("host")
    (tmp_path / "src").mkdir()
    v1, v2 = bundles(fixture, name, python, tmp_path / "src")
    target = SandboxTarget(box.name)
    ok(commands.deploy(DeployOptions(v1), target))
    wait_serving(box.address, 30, name)
    assert version(box.address, name) == "0.1.0"
    venv = box.exec(["readlink", "-f", f"/opt/{name}/current/venv"]).stdout.decode().strip()
    probe = "import gunicorn, sys; print(gunicorn.__version__, '%d.%d' % sys.version_info[:2])"
    ran = box.exec([f"{venv}/bin/python", "-I", "-c", probe]).stdout.decode().split()
    assert ran == [pinned_gunicorn(fixture), python]  # the gunicorn and Python this case is about

    workers = nginx_workers(box)
    wrk = start_wrk(box.address, name, tmp_path)
    try:
        time.sleep(3)  # the load is on before the deploy starts
        assert switch(box, name, lambda: commands.deploy(DeployOptions(v2), target))
        assert version(box.address, name) == "0.2.0"
        time.sleep(2)
        assert switch(box, name, lambda: commands.rollback(name, target))
        assert version(box.address, name) == "0.1.0"
        time.sleep(2)
    finally:
        load = stop_wrk(wrk, tmp_path)
    assert nginx_workers(box) == workers  # never reloaded: no client's keep-alive connection was closed

    logged = post_ids(box, name)
    duplicated = sorted(i for i, n in logged.items() if n > 1)
    lost = sorted(set(load.answered) - set(logged))
    answered = sum(load.versions.values()) + len(load.answered)
    print(f"drain e2e {fixture} on {python}: {answered} answered, {len(load.bad)} non-2xx, "
          f"errors {load.errors}, {len(duplicated)} duplicated, {len(lost)} lost")  # fmt: skip
    assert load.bad == []  # every answer 200 or 201: nothing failed upstream
    failed = {k: load.errors[k] for k in ("connect", "read", "write", "timeout")}
    assert failed == {"connect": 0, "read": 0, "write": 0, "timeout": 0}, load.errors
    assert duplicated == [] and lost == []
    assert set(logged) <= set(load.sent)  # nothing logged that was not sent
    assert len(load.answered) > 100 and load.versions["0.1.0"] > 100 and load.versions["0.2.0"] > 0
    assert set(load.versions) == {"0.1.0", "0.2.0"}
