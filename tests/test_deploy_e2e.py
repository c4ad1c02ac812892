"""The deploy lifecycle end to end on sandbox hosts (issue 5 acceptance).

One host is shared by the steps of a module (they build on each other: fresh deploy, redeploy,
kill -9, broken release, rollback, reboot, side-by-side services, uninstall, then refusals that
must leave it unchanged: a failed first deploy of a new service, clashing nginx sites); the killed
deploys each get a fresh host. Bundles are built once per
session. Traffic goes only to the sandbox addresses (over their veth) and to 127.0.0.0/8.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.errors import IntegratorError
from integrator.host.deploy_options import DeployOptions
from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

PY, MACHINE = "3.11", "x86_64"  # the sandbox hosts' python3 (Debian 12)


# --- bundles ------------------------------------------------------------------------------------


def _set_version(src: Path, old: str, new: str) -> None:
    name = (src / "service.toml").read_text().split('name = "', 1)[1].split('"', 1)[0]
    for rel in ("service.toml", "pyproject.toml", f"src/{name}/__init__.py"):
        path = src / rel
        path.write_text(path.read_text().replace(f'"{old}"', f'"{new}"'))


def _new_service(name: str, dest: Path) -> Path:
    from integrator.cli import main

    assert main(["new", name, str(dest)]) == 0
    return dest


def _build(src: Path, out: Path, preflight: bool = True) -> Path:
    """`integrator bundle` for the sandbox hosts' Python (wheel downloads are cached by pip).

    `preflight=False` (`--no-preflight`) for the releases broken on purpose: the preflight would
    refuse to build them, and these tests need them to reach the host's health gate."""
    from integrator.bundle.commands import bundle

    result = bundle(src, pythons=[PY], platforms=[MACHINE], output=out, sign_key=None, preflight=preflight)
    assert result.exit_code == 0, result.lines
    return next(out.glob("*.pyz"))


@dataclass(frozen=True)
class Bundles:
    demo1: Path
    demo1_tuned: Path  # demo 0.1.0 again, other workers and keep_releases = 2: the same lock
    demo2: Path
    broken: Path  # demo 0.3.0: raises at import
    shop: Path
    clone: Path  # `integrator clone` of demo, as demo2x
    fresh_broken: Path  # a service never deployed before, broken
    vault: Path  # needs the secret api_key
    unhealthy: Path  # demo 0.4.0: imports fine, /healthz answers 500


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    from integrator.cli import main

    root = tmp_path_factory.mktemp("bundles")
    out = root / "dist"
    demo = _new_service("demo", root / "demo")
    demo1 = _build(demo, out / "1")
    toml = demo / "service.toml"
    original = toml.read_text()
    assert "workers = 2" in original and "keep_releases = 5" in original
    toml.write_text(
        original.replace("workers = 2", "workers = 3").replace("keep_releases = 5", "keep_releases = 2")
    )
    demo1_tuned = _build(demo, out / "1b")
    toml.write_text(original)
    _set_version(demo, "0.1.0", "0.2.0")
    demo2 = _build(demo, out / "2")
    _set_version(demo, "0.2.0", "0.3.0")
    init = demo / "src/demo/__init__.py"
    healthy_init = init.read_text()
    init.write_text(healthy_init + '\nraise RuntimeError("broken on purpose")\n')
    broken = _build(demo, out / "3", preflight=False)
    init.write_text(healthy_init)
    _set_version(demo, "0.3.0", "0.4.0")
    views = demo / "src/demo/views.py"
    assert 'return jsonify(status="ok")' in views.read_text()
    views.write_text(
        views.read_text().replace('return jsonify(status="ok")', 'return jsonify(status="sick"), 500')
    )
    unhealthy = _build(demo, out / "8", preflight=False)
    shop = _build(_new_service("shop", root / "shop"), out / "4")
    assert main(["clone", str(root / "shop"), "shopx", str(root / "shopx")]) == 0
    clone = _build(root / "shopx", out / "5")
    fresh = _new_service("lonely", root / "lonely")
    init = fresh / "src/lonely/__init__.py"
    init.write_text(init.read_text() + '\nraise RuntimeError("never worked")\n')
    vault = _new_service("vault", root / "vault")
    toml = vault / "service.toml"
    toml.write_text(toml.read_text().replace("[secrets]\nfiles = []", '[secrets]\nfiles = ["api_key"]'))
    fresh_broken, vault_bundle = _build(fresh, out / "6", preflight=False), _build(vault, out / "7")
    return Bundles(demo1, demo1_tuned, demo2, broken, shop, clone, fresh_broken, vault_bundle, unhealthy)


# --- hosts and HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(make_module_sandbox: MakeSandbox) -> Sandbox:
    """The module's one host, which its lifecycle steps share."""
    return make_module_sandbox()


def get(
    address: str,
    path: str = "/",
    host: str | None = None,
    https: bool = True,
    port: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str]]:
    """One request from this machine to the sandbox (never elsewhere): status, body, headers.
    `host` is both the TLS name (SNI) and `Host:`; without it nginx refuses the handshake."""
    assert address.startswith("10."), address
    port = port or (443 if https else 80)
    conn = http.client.HTTPConnection(address, port, timeout=5)
    if https:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn.sock = ctx.wrap_socket(socket.create_connection((address, port), 5), server_hostname=host)
    try:
        conn.request("GET", path, headers={**({"Host": host} if host else {}), **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace"), dict(resp.headers)
    finally:
        conn.close()


def wait_serving(address: str, seconds: float, host: str | None = None) -> float:
    """Seconds until `/healthz` answers 200 (fails after `seconds`)."""
    start = time.monotonic()
    while True:
        try:
            if get(address, "/healthz", host)[0] == 200:
                return time.monotonic() - start
        except OSError:
            pass
        assert time.monotonic() - start < seconds, f"not serving after {seconds} s"
        time.sleep(0.1)


def version(address: str, host: str | None = None) -> str:
    status, body, _ = get(address, "/", host)
    assert status == 200, body
    return str(json.loads(body)["version"])


def serving_unit(box: Sandbox, name: str) -> str:
    """NAME-a or NAME-b: the slot whose socket the serving link (the site's upstream) names."""
    site = sh(box, "cat", f"/etc/nginx/conf.d/{name}.conf").stdout.decode()
    assert f"server unix:/opt/{name}/serving.sock;" in site, site
    link = sh(box, "readlink", f"/opt/{name}/serving.sock").stdout.decode().strip()
    (slot,) = [s for s in ("a", "b") if link == f"/run/{name}/gunicorn-{s}.sock"]
    return f"{name}-{slot}"


def sh(box: Sandbox, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return box.exec(list(argv), check=False)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, "\n".join(result.lines)
    return result


# --- the lifecycle on one host ------------------------------------------------------------------


def test_fresh_deploy_serves_https_and_redirects(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    start = time.monotonic()
    result = ok(commands.deploy(DeployOptions(bundles.demo1), target))
    print(f"fresh deploy: {time.monotonic() - start:.1f} s", *result.lines, sep="\n")
    address = host.address
    status, body, _ = get(address, "/", "demo")
    assert status == 200 and json.loads(body)["service"] == "demo"
    assert get(address, "/healthz", "demo")[0] == 200
    # Plain http by name (the stock Debian default site answers names nobody claims).
    status, _, headers = get(address, "/", host="demo", https=False)
    assert status == 301 and headers["Location"].startswith("https://")


def test_same_bundle_again_is_nothing_to_do(host: Sandbox, bundles: Bundles) -> None:
    result = ok(commands.deploy(DeployOptions(bundles.demo1), SandboxTarget(host.name)))
    assert "nothing to do" in result.lines[0] and result.data["changed"] is False


def test_plan_shows_diffs_and_changes_nothing(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    result = ok(commands.deploy(DeployOptions(bundles.demo2, plan_only=True), target))
    other = "demo-b" if serving_unit(host, "demo") == "demo-a" else "demo-a"  # where the new one would start
    assert any(f"/etc/systemd/system/{other}.service" in line for line in result.lines)
    assert any(line.lstrip().startswith("+") for line in result.lines)  # a diff
    assert version(host.address, "demo") == "0.1.0"


def test_kill9_of_main_process_serves_again_within_5s(host: Sandbox) -> None:
    unit = f"{serving_unit(host, 'demo')}.service"
    pid = sh(host, "systemctl", "show", "-p", "MainPID", "--value", unit).stdout.decode().strip()
    assert pid not in ("", "0")
    sh(host, "kill", "-9", pid)
    took = wait_serving(host.address, 5, host="demo")
    print(f"serving again {took:.2f} s after kill -9")


def test_broken_release_fails_and_old_release_serves(host: Sandbox, bundles: Bundles) -> None:
    result = commands.deploy(DeployOptions(bundles.broken), SandboxTarget(host.name))
    text = "\n".join(result.lines)
    print(text)
    assert result.exit_code != 0
    assert "health check" in text and "still serving" in text
    assert "broken on purpose" in text  # the failed start's journal lines
    assert version(host.address, "demo") == "0.1.0"


def test_unhealthy_release_fails_and_old_release_serves(host: Sandbox, bundles: Bundles) -> None:
    """It starts and imports fine, but /healthz answers 500 through nginx: not activated."""
    result = commands.deploy(DeployOptions(bundles.unhealthy), SandboxTarget(host.name))
    text = "\n".join(result.lines)
    assert result.exit_code != 0
    assert "health check" in text and "HTTP 500" in text and "still serving" in text
    assert version(host.address, "demo") == "0.1.0"
    assert get(host.address, "/healthz", "demo")[0] == 200


def test_deploy_v2_then_rollback_returns_previous(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    ok(commands.deploy(DeployOptions(bundles.demo2), target))
    assert version(host.address, "demo") == "0.2.0"
    ok(commands.rollback("demo", target))
    assert version(host.address, "demo") == "0.1.0"
    listing = ok(commands.releases("demo", target))
    outcomes = [r["outcome"] for r in listing.data["releases"]]
    assert outcomes == ["ok", "failed", "failed", "rolled_back"], listing.lines  # import error, 500
    assert ok(commands.status("demo", target)).data["services"][0]["healthy"] is True


def test_the_same_lock_reuses_its_venv_and_rollback_after_cleanup_serves(
    host: Sandbox, bundles: Bundles
) -> None:
    """Same app wheel and dependencies, other config: the new release links to the venv already
    built (nothing rebuilt). keep_releases = 2 then removes every release but the new one and the
    rollback target (0.2.0), and every venv no remaining release links to; the shared venv stays
    (the new release uses it) and the rollback target still serves from its own."""
    target = SandboxTarget(host.name)

    def link(rid: str) -> str:
        return sh(host, "readlink", f"/opt/demo/releases/{rid}/venv").stdout.decode().strip()

    records = ok(commands.releases("demo", target)).data["releases"]
    current = next(r["id"] for r in records if r["outcome"] == "ok")
    previous = next(r["id"] for r in records if r["outcome"] == "rolled_back")
    shared = link(current)
    result = ok(commands.deploy(DeployOptions(bundles.demo1_tuned), target))
    assert result.data["venv"]["reused"] is True, result.lines
    new = result.data["release"]
    assert link(new) == shared and shared.startswith("../../venvs/py3.11-")
    assert sorted(sh(host, "ls", "/opt/demo/releases").stdout.decode().split()) == sorted([previous, new])
    venvs = sorted(sh(host, "ls", "/opt/demo/venvs").stdout.decode().split())
    assert venvs == sorted(p.rsplit("/", 1)[1] for p in (shared, link(previous)))
    assert version(host.address, "demo") == "0.1.0"
    ok(commands.rollback("demo", target))
    assert version(host.address, "demo") == "0.2.0" and get(host.address, "/healthz", "demo")[0] == 200
    ok(commands.rollback("demo", target, to=new))
    assert version(host.address, "demo") == "0.1.0"
    assert ok(commands.status("demo", target)).data["services"][0]["healthy"] is True


def test_two_services_and_a_clone_side_by_side(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    ok(commands.deploy(DeployOptions(bundles.shop), target))
    ok(commands.deploy(DeployOptions(bundles.clone), target))
    address = host.address
    for name in ("demo", "shop", "shopx"):
        status, body, _ = get(address, "/", host=name)
        assert status == 200 and json.loads(body)["service"] == name, body
    names = [s["service"] for s in ok(commands.list_services(target)).data["services"]]
    assert names == ["demo", "shop", "shopx"]


def test_logs_doctor_and_the_cli(host: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from integrator.cli import main

    target = SandboxTarget(host.name)
    assert ok(commands.logs("demo", target, lines=20)).lines
    ok(commands.doctor(None, target))
    capsys.readouterr()
    assert main(["status", "--host", host.name, "--json"]) == 0
    services = json.loads(capsys.readouterr().out)["services"]
    assert {s["service"]: s["healthy"] for s in services} == {"demo": True, "shop": True, "shopx": True}


def test_reboot_serves_again_without_any_command(host: Sandbox) -> None:
    start = time.monotonic()
    host.reboot()
    took = wait_serving(host.address, 60, host="shop")
    print(f"serving again {time.monotonic() - start:.1f} s after reboot ({took:.1f} s after boot)")
    assert version(host.address, "demo") == "0.1.0"


def test_changed_host_python_is_detected_and_the_venv_rebuilt(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    # Pretend the host's python3 moved on since shop's venv was built.
    sh(host, "sed", "-i", "s/^version = .*/version = 3.10.0/", "/opt/shop/current/venv/pyvenv.cfg")
    report = commands.doctor("shop", target)
    assert report.exit_code != 0 and any("built for Python 3.10.0" in line for line in report.lines)
    result = ok(commands.deploy(DeployOptions(bundles.shop), target))
    assert "rebuilding the venv" in result.lines[0]
    ok(commands.doctor("shop", target))
    assert version(host.address, "shop") == "0.1.0"


def test_uninstall_leaves_nginx_valid_and_no_trace(host: Sandbox) -> None:
    target = SandboxTarget(host.name)
    ok(commands.uninstall("shopx", target, purge=True))
    assert sh(host, "nginx", "-t").returncode == 0
    units = [f"/etc/systemd/system/shopx{s}.{k}" for s in ("", "-a", "-b") for k in ("service", "socket")]
    state = ("/var/lib/integrator/shopx", "/etc/integrator/shopx", "/var/lib/shopx")
    for path in ("/opt/shopx", "/etc/nginx/conf.d/shopx.conf", *units, *state):
        assert sh(host, "test", "-e", path).returncode != 0, path
    assert sh(host, "id", "shopx").returncode != 0
    assert version(host.address, "shop") == "0.1.0"
    with pytest.raises(IntegratorError, match="not"):
        commands.status("shopx", target)


def test_secrets_are_required_and_stored_root_only(host: Sandbox, bundles: Bundles, tmp_path: Path) -> None:
    target = SandboxTarget(host.name)
    with pytest.raises(IntegratorError, match="--secret api_key=FILE") as err:
        commands.deploy(DeployOptions(bundles.vault), target)
    assert err.value.exit_code == 2
    assert sh(host, "test", "-e", "/opt/vault").returncode != 0  # refused before touching anything
    secret = tmp_path / "api_key"
    secret.write_text("s3cret-value\n")
    result = ok(commands.deploy(DeployOptions(bundles.vault, secrets={"api_key": secret}), target))
    assert "s3cret" not in "\n".join(result.lines)
    modes = sh(
        host,
        "stat",
        "-c",
        "%a %U",
        "/etc/integrator/vault/credentials",
        "/etc/integrator/vault/credentials/api_key",
    )
    assert modes.stdout.decode().split("\n")[:2] == ["700 root", "600 root"]
    unit = sh(host, "cat", f"/etc/systemd/system/{serving_unit(host, 'vault')}.service").stdout.decode()
    assert "LoadCredential=api_key:" in unit and "s3cret" not in unit
    assert get(host.address, "/healthz", host="vault")[0] == 200
    assert sh(host, "sh", "-c", "ls /var/tmp/integrator | grep deploy-").returncode != 0  # copies removed
    staging = sh(host, "ls", "-A", "/var/cache/integrator-host/staging")  # where the copies went
    assert (staging.returncode, staging.stdout) == (0, b"")


# --- a failed first deploy ----------------------------------------------------------------------


def test_failed_first_deploy_removes_everything(host: Sandbox, bundles: Bundles) -> None:
    box = host
    before = sh(box, "sh", "-c", "ls /etc/nginx/conf.d /etc/systemd/system; getent passwd | wc -l").stdout
    result = commands.deploy(DeployOptions(bundles.fresh_broken), SandboxTarget(box.name))
    assert result.exit_code != 0 and "everything it wrote was removed" in "\n".join(result.lines)
    after = sh(box, "sh", "-c", "ls /etc/nginx/conf.d /etc/systemd/system; getent passwd | wc -l").stdout
    assert after == before
    for path in ("/opt/lonely", "/var/lib/integrator/lonely", "/etc/integrator/lonely"):
        assert sh(box, "test", "-e", path).returncode != 0, path
    assert sh(box, "nginx", "-t").returncode == 0


def test_default_server_clash_is_refused_before_any_change(host: Sandbox, tmp_path: Path) -> None:
    """Debian's stock site is the default server for port 80: say so, touch nothing."""
    box = host
    src = _new_service("front", tmp_path / "front")
    toml = src / "service.toml"
    toml.write_text(toml.read_text().replace("default_server = false", "default_server = true"))
    assert "default_server = true" in toml.read_text()
    bundle = _build(src, tmp_path / "dist")
    listing = [
        "sh",
        "-c",
        "ls -R /etc/nginx /etc/systemd/system /opt /var/lib/integrator 2>&1; getent passwd",
    ]
    before = sh(box, *listing).stdout
    with pytest.raises(
        IntegratorError, match=r"sites-enabled/default already is nginx's default server for port 80"
    ):
        commands.deploy(DeployOptions(bundle), SandboxTarget(box.name))
    assert sh(box, *listing).stdout == before


# --- a deploy killed part-way ---------------------------------------------------------------------


@pytest.mark.parametrize("step", ["unpack", "venv", "health"])
def test_deploy_killed_part_way_leaves_a_release_serving(
    make_sandbox: MakeSandbox, bundles: Bundles, step: str
) -> None:
    """SIGKILL of the deploy at a named step (the lock file names the step it is at; no sleeping
    and guessing): old or new release serves, nginx is valid, and the next deploy (the lock died
    with the process) repairs what it left, then completes."""
    from tests.test_deploy_interrupt_e2e import consistent, interrupted

    box = make_sandbox()
    target = SandboxTarget(box.name)
    ok(commands.deploy(DeployOptions(bundles.demo1), target))
    box.copy_in(bundles.demo2, "/root/demo2.pyz")
    run = interrupted(box, ["/root/demo2.pyz", "deploy"], [f"{step}:SIGKILL"])
    assert run.returncode != 0, "the deploy finished before it was killed: nothing was tested"
    assert sh(box, "nginx", "-t").returncode == 0
    wait_serving(box.address, 10, host="demo")
    assert version(box.address, "demo") in ("0.1.0", "0.2.0")
    result = ok(commands.deploy(DeployOptions(bundles.demo2), target))
    assert result.lines[0].startswith("found an interrupted deploy of "), result.lines
    assert version(box.address, "demo") == "0.2.0"
    consistent(box)


def test_a_server_name_already_served_is_refused_before_any_change(host: Sandbox, tmp_path: Path) -> None:
    """nginx only warns about a duplicate server name, then routes it to the first site."""
    box = host
    built = {}
    for name in ("alpha", "beta"):
        src = _new_service(name, tmp_path / name)
        toml = src / "service.toml"
        toml.write_text(toml.read_text().replace("server_names = []", 'server_names = ["app.example"]'))
        assert 'server_names = ["app.example"]' in toml.read_text()
        built[name] = _build(src, tmp_path / "dist" / name)
    ok(commands.deploy(DeployOptions(built["alpha"]), SandboxTarget(box.name)))
    listing = [
        "sh",
        "-c",
        "ls -R /etc/nginx /etc/systemd/system /opt /var/lib/integrator 2>&1; getent passwd",
    ]
    before = sh(box, *listing).stdout
    with pytest.raises(IntegratorError, match=r"conf.d/alpha.conf already serves app.example on port 443"):
        commands.deploy(DeployOptions(built["beta"]), SandboxTarget(box.name))
    assert sh(box, *listing).stdout == before
    assert get(box.address, "/", "app.example")[0] == 200
