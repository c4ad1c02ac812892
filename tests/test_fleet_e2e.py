"""A fleet for real: one load balancer and three app hosts (sandbox hosts with sshd), driven by
`integrator fleet` running the real `ansible-playbook` from this machine.

The hosts share one module (they are slow to make and each test builds on the one before).
Sandbox hosts reach only this machine by default; the LB must reach the app hosts. It does
over a private network, as LBs and app hosts often do: a veth pair made straight between the
LB's network namespace and each app host's (`private_link`, 10.214.N.0/30), the app host's end
being its `integrator_backend`. This machine routes and forwards nothing between the hosts (no
sysctl is touched here), and the links go away with the hosts. Ansible and the load reach each
host at its own address, as before. Traffic goes only to the sandbox hosts.
Load is bounded in count and time; POST ids are counted in the app hosts' journals.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from integrator.cli import main
from integrator.sandbox import Sandbox
from tests.drain_services import unlimited_journal
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, _set_version, sh
from tests.test_deploy_ssh import allow_root_login

pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.root]

SERVICE = "fleetsvc"
MAX_LOAD_S = 900  # each client thread stops by then, whatever happens
BROKEN_FLAG = "/etc/fleet-broken-on-purpose"  # v3 answers /healthz with 500 where this exists
ORDERS = '''

@bp.post("/orders")
def order() -> ResponseReturnValue:
    """A request that must happen once: the fleet test counts each id in the journals."""
    return jsonify(id=request.headers.get("X-Request-ID", "")), 201
'''


@dataclass(frozen=True)
class Fleet:
    lb: Sandbox
    apps: tuple[Sandbox, ...]
    backends: tuple[str, ...]  # each app host's address on its private link with the LB
    inventory: Path
    ca: Path  # the fleet's CA, made by the first run next to the inventory


@dataclass(frozen=True)
class Releases:
    v1: Path
    v2: Path
    v3: Path  # unhealthy on a host holding BROKEN_FLAG


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    root = tmp_path_factory.mktemp("fleet-bundles")
    src = _new_service(SERVICE, root / SERVICE)
    toml = src / "service.toml"
    toml.write_text(toml.read_text().replace('mode = "self-signed"', 'mode = "local-ca"'))
    views = src / f"src/{SERVICE}/views.py"
    healthy = views.read_text() + ORDERS
    views.write_text(healthy)
    v1 = _build(src, root / "1")
    _set_version(src, "0.1.0", "0.2.0")
    v2 = _build(src, root / "2")
    _set_version(src, "0.2.0", "0.3.0")
    sick = 'return (jsonify(status="sick"), 500) if os.path.exists(FLAG) else jsonify(status="ok")'
    assert 'return jsonify(status="ok")' in healthy
    views.write_text(
        healthy.replace('return jsonify(status="ok")', sick).replace(
            "import socket", f"import os\nimport socket\n\nFLAG = {BROKEN_FLAG!r}"
        )
    )
    return Releases(v1, v2, _build(src, root / "3", preflight=False))


def private_link(lb: Sandbox, app: Sandbox, n: int) -> str:
    """A veth pair from the LB's network namespace straight into the app host's (10.214.N.0/30,
    made inside those namespaces: nothing appears on this machine's side); the app host's end."""
    lb_end, app_end = f"fleet{n}", "fleet0"
    argv = ["ip", "link", "add", lb_end, "netns", str(lb.leader()), "type", "veth"]
    subprocess.run([*argv, "peer", "name", app_end, "netns", str(app.leader())], check=True, timeout=30)
    for box, dev, address in ((lb, lb_end, f"10.214.{n}.1"), (app, app_end, f"10.214.{n}.2")):
        box.netns_run(["ip", "addr", "add", f"{address}/30", "dev", dev])
        box.netns_run(["ip", "link", "set", "dev", dev, "up"])
    return f"10.214.{n}.2"


@pytest.fixture(scope="module")
def fleet(make_module_sandbox: MakeSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("fleet")
    boxes = [make_module_sandbox() for _ in range(4)]
    lines = ["all:", "  vars:", "    ansible_user: root", "  children:"]
    backends: list[str] = []
    for group, members in (("integrator_lb", boxes[:1]), ("integrator_app", boxes[1:])):
        lines += [f"    {group}:", "      hosts:"]
        for n, box in enumerate(members, start=1):
            own = work / box.name
            own.mkdir()
            config = allow_root_login(box, own)
            lines += [f"        {box.name}:", f"          ansible_host: {box.address}"]
            lines += [f"          ansible_ssh_common_args: -F {config}"]
            if group == "integrator_app":
                unlimited_journal(box)  # under load journald would drop the lines the POSTs are counted in
                backends.append(private_link(boxes[0], box, n))
                lines += [f"          integrator_backend: {backends[-1]}"]
    inventory = work / "inventory.yml"
    inventory.write_text("\n".join(lines) + "\n")
    ca = work / "integrator-fleet-ca" / "ca.pem"
    yield Fleet(boxes[0], tuple(boxes[1:]), tuple(backends), inventory, ca)


def fleet_cli(*argv: str) -> int:
    return main(["fleet", *argv])


def current(box: Sandbox) -> str:
    out = sh(box, "python3", "-c", "import os; print(os.readlink('/opt/fleetsvc/current'))").stdout.decode()
    return out.strip().rsplit("/", 1)[-1]


def versions(fleet: Fleet) -> list[str]:
    return [current(box) for box in fleet.apps]


def staged(box: Sandbox) -> list[str]:
    """The bundles staged on a host (transport only: the releases live under /opt)."""
    out = sh(box, "python3", "-c", "import os; print(*sorted(os.listdir('/var/lib/integrator-fleet')))")
    return [name for name in out.stdout.decode().split() if name.endswith(".pyz")]


def fleet_files(fleet: Fleet) -> list[bytes]:
    """Every host's fleet directory, names, sizes and times (the LB's lock and state too)."""
    return [
        sh(box, "ls", "-lR", "--time-style=full-iso", "/var/lib/integrator-fleet").stdout
        for box in (fleet.lb, *fleet.apps)
    ]


def lb_site(fleet: Fleet) -> str:
    return fleet.lb.exec(["cat", f"/etc/nginx/conf.d/{SERVICE}.conf"]).stdout.decode()


# --- bounded load through the LB ------------------------------------------------------------------


@dataclass
class Load:
    failures: Counter[str] = field(default_factory=Counter)
    posted: list[str] = field(default_factory=list)
    answered: int = 0
    retried: int = 0


class _ToLb(http.client.HTTPSConnection):
    """HTTPS to the LB's address, speaking for the service's name (SNI and Host), verified
    against the fleet's CA."""

    def __init__(self, address: str, ca: Path) -> None:
        super().__init__(SERVICE, 443, timeout=10, context=ssl.create_default_context(cafile=str(ca)))
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, 443), 10)
        self.sock = self._context.wrap_socket(raw, server_hostname=SERVICE)  # type: ignore[attr-defined]


def _loop(address: str, ca: Path, stop: threading.Event, load: Load, keepalive: bool, limit: int) -> None:
    """GET / and POST /orders in turn, on one keep-alive connection or a new one each time."""
    conn = _ToLb(address, ca)
    reused = False
    deadline = time.monotonic() + MAX_LOAD_S
    for n in range(limit):
        if stop.is_set() or time.monotonic() > deadline:
            break
        post = n % 2 == 1
        rid = uuid.uuid4().hex
        headers = {"X-Request-ID": rid, "Connection": "keep-alive" if keepalive else "close"}
        for attempt in (0, 1):
            try:
                method, path = ("POST", "/orders") if post else ("GET", "/")
                conn.request(method, path, body=b"" if post else None, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status in (200, 201)
                if not ok:
                    load.failures[f"HTTP {resp.status}"] += 1
                elif post:
                    load.posted.append(rid)
                load.answered += 1
                reused = keepalive and not resp.will_close
                if not reused:
                    conn.close()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                # closed before any answer on a reused idle connection (an nginx reload retiring
                # its workers): nothing reached the app, a client opens a new one (the journals
                # below prove no POST ran twice)
                if reused and attempt == 0:
                    load.retried += 1
                    reused = False
                    continue
                load.failures[type(exc).__name__] += 1
                reused = False
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                load.failures[type(exc).__name__] += 1
                reused = False
                time.sleep(0.01)
                break
    conn.close()


class Traffic:
    """Four client threads (two keep-alive, two a connection per request), bounded."""

    def __init__(self, fleet: Fleet, limit: int = 40_000) -> None:
        self.load, self.stop = Load(), threading.Event()
        self.threads = [
            threading.Thread(target=_loop, args=(fleet.lb.address, fleet.ca, self.stop, self.load, ka, limit))
            for ka in (True, True, False, False)
        ]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self.load

    def running(self) -> bool:
        """Still sending: the load covered everything before this."""
        return all(t.is_alive() for t in self.threads)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def posts_in_journals(fleet: Fleet) -> Counter[str]:
    """How often the apps logged each POST id. Read with the staged bundle's own `logs --source
    app`: host/journal.py alone says which units are the app's, however the activation names them."""
    seen: Counter[str] = Counter()
    for box in fleet.apps:
        logs = ["logs", SERVICE, "--source", "app", "--lines", "100000000"]
        bundle = f"/var/lib/integrator-fleet/{staged(box)[0]}"
        out = box.exec(["python3", bundle, *logs], timeout=600).stdout.decode()
        for line in out.splitlines():
            start = line.find("{")
            if start >= 0 and '"POST"' in line:
                seen[json.loads(line[start:]).get("request_id", "")] += 1
    return seen


# --- the fleet's life -----------------------------------------------------------------------------


def test_v1_everywhere(fleet: Fleet, releases: Releases) -> None:
    assert fleet_cli("deploy", str(releases.v1), "-i", str(fleet.inventory)) == 0
    ids = set(versions(fleet))
    assert len(ids) == 1 and ids.pop().startswith(f"{SERVICE}-0.1.0-")
    site = lb_site(fleet)
    for backend in fleet.backends:
        assert f"server {backend}:443 max_fails=2 fail_timeout=10s;" in site
    assert "proxy_ssl_verify on;" in site and fleet.ca.is_file()


def test_v2_rolls_under_load_without_a_failed_or_repeated_request(fleet: Fleet, releases: Releases) -> None:
    with (traffic := Traffic(fleet)) as load:
        time.sleep(1)
        assert fleet_cli("deploy", str(releases.v2), "-i", str(fleet.inventory)) == 0
        time.sleep(1)
        assert traffic.running()
    assert load.answered > 100, load
    assert not load.failures, load.failures
    seen = posts_in_journals(fleet)
    assert all(seen[rid] == 1 for rid in load.posted), [r for r in load.posted if seen[r] != 1][:5]
    ids = set(versions(fleet))
    assert len(ids) == 1 and ids.pop().startswith(f"{SERVICE}-0.2.0-")
    assert " down;" not in lb_site(fleet)
    # v1's staged bundle is gone from every host, v2's stays (a re-run copies nothing)
    assert [staged(box) for box in (fleet.lb, *fleet.apps)] == [[releases.v2.name]] * 4


def test_the_same_release_again_changes_nothing(
    fleet: Fleet, releases: Releases, capfd: pytest.CaptureFixture[str]
) -> None:
    before, site = versions(fleet), lb_site(fleet)
    pid = fleet.lb.exec(["systemctl", "show", "nginx", "-p", "MainPID", "--value"]).stdout.decode().strip()
    workers = fleet.lb.exec(["pgrep", "-P", pid]).stdout.decode().split()
    capfd.readouterr()
    assert fleet_cli("deploy", str(releases.v2), "-i", str(fleet.inventory)) == 0
    out = capfd.readouterr().out
    recap = [line for line in out.splitlines() if "changed=" in line and "unreachable=" in line]
    assert len(recap) == 5, out[-2000:]  # localhost, the LB, three app hosts
    assert all("changed=0" in line for line in recap), recap
    assert versions(fleet) == before and lb_site(fleet) == site
    assert fleet.lb.exec(["pgrep", "-P", pid]).stdout.decode().split() == workers  # no reload
    assert [staged(box) for box in (fleet.lb, *fleet.apps)] == [[releases.v2.name]] * 4


def test_a_release_failing_on_the_second_host_rolls_the_fleet_back(fleet: Fleet, releases: Releases) -> None:
    v2 = versions(fleet)
    second = fleet.apps[1]
    second.exec(["touch", BROKEN_FLAG])
    try:
        with (traffic := Traffic(fleet)) as load:
            assert fleet_cli("deploy", str(releases.v3), "-i", str(fleet.inventory)) == 1
            assert traffic.running()
    finally:
        second.exec(["rm", "-f", BROKEN_FLAG])
    assert versions(fleet) == v2  # the first host is back, the second restored itself
    third = fleet.apps[2].exec(["ls", "/opt/fleetsvc/releases"]).stdout.decode()
    assert "0.3.0" not in third  # the third host never received v3
    assert " down;" not in lb_site(fleet)
    assert not load.failures, load.failures
    seen = posts_in_journals(fleet)
    assert all(seen[rid] == 1 for rid in load.posted)


def test_check_changes_nothing(fleet: Fleet, releases: Releases) -> None:
    """A plan of v1, staged nowhere (the last finished run, the rollback, kept v3's bundle): each
    host plans it with the bundle sent for that command; no release, site or staged file changes."""
    hosts = (fleet.lb, *fleet.apps)
    before, site = versions(fleet), lb_site(fleet)
    listing = [box.exec(["ls", "/opt/fleetsvc/releases"]).stdout for box in fleet.apps]
    files = fleet_files(fleet)
    assert all(releases.v1.name not in names for names in map(staged, hosts))
    assert fleet_cli("plan", str(releases.v1), "-i", str(fleet.inventory)) == 0
    assert versions(fleet) == before and lb_site(fleet) == site
    assert [box.exec(["ls", "/opt/fleetsvc/releases"]).stdout for box in fleet.apps] == listing
    assert fleet_files(fleet) == files


def test_a_run_killed_while_a_host_is_drained_is_repaired_by_the_next(
    fleet: Fleet, releases: Releases
) -> None:
    """SIGKILL to the controller (its whole session: ansible-playbook and ssh too) while the first
    app host is drained; the next run takes the stale lock over, puts the host back, converges."""
    argv = [
        sys.executable,
        "-m",
        "integrator.cli",
        "fleet",
        "deploy",
        str(releases.v1),
        "-i",
        str(fleet.inventory),
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while " down;" not in lb_site(fleet):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    lock = f"/var/lib/integrator-fleet/{SERVICE}.lock"
    assert sh(fleet.lb, "test", "-e", lock).returncode == 0  # left behind
    assert " down;" in lb_site(fleet)
    time.sleep(5)  # whatever the killed run's remote commands still do, they finish
    assert fleet_cli("deploy", str(releases.v1), "-i", str(fleet.inventory)) == 0
    ids = set(versions(fleet))
    assert len(ids) == 1 and ids.pop().startswith(f"{SERVICE}-0.1.0-")
    assert " down;" not in lb_site(fleet)
    assert sh(fleet.lb, "test", "-e", lock).returncode != 0


def test_status_reads_the_fleet_without_staging_anything(
    fleet: Fleet, releases: Releases, capfd: pytest.CaptureFixture[str]
) -> None:
    """v2's bundle is not staged anywhere (the last run was v1): status sends it for its one
    command on each app host and leaves every host's files as they were."""
    hosts = (fleet.lb, *fleet.apps)
    files = fleet_files(fleet)
    assert all(releases.v2.name not in names for names in map(staged, hosts))
    capfd.readouterr()
    assert fleet_cli("status", str(releases.v2), "-i", str(fleet.inventory)) == 0
    out = capfd.readouterr().out
    for release in versions(fleet):
        assert f"{release} healthy" in out, out[-3000:]
    assert fleet_files(fleet) == files


def test_an_unreachable_host_stops_the_run_before_any_change(fleet: Fleet, releases: Releases) -> None:
    before, site = versions(fleet), lb_site(fleet)
    state = fleet.lb.exec(["cat", f"/var/lib/integrator-fleet/{SERVICE}.state.json"]).stdout
    third = fleet.apps[2]
    third.exec(["systemctl", "stop", "ssh.service"])
    # sshd's sessions outlive it (KillMode=process), and Ansible keeps one open (ControlPersist):
    # every sshd process inside that host goes
    sh(third, "pkill", "-x", "sshd")
    files = fleet_files(fleet)
    try:
        assert fleet_cli("deploy", str(releases.v2), "-i", str(fleet.inventory)) == 1
        assert versions(fleet) == before and lb_site(fleet) == site
        assert fleet_files(fleet) == files
        assert fleet.lb.exec(["cat", f"/var/lib/integrator-fleet/{SERVICE}.state.json"]).stdout == state
    finally:
        third.exec(["systemctl", "start", "ssh.service"])
