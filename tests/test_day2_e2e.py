"""Day-2 operations end to end on one sandbox host (issue 10 items 5 and 6): the site's nginx
lines in the journal next to the app's; ACME challenges on port 80 and a provided certificate
replaced on disk, served without a deploy.

The steps share one host and one service and build on each other. Traffic goes only to the
sandbox's address.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.result import Result
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, get, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

NAME = "edge"


TLS_DIR = f"/etc/ssl/{NAME}"  # the provided pair, as an ACME client would keep it
WEBROOT = f"/etc/integrator/{NAME}/acme"
ACME_NAME = f"{NAME}.test"  # what pebble's mock DNS answers with the sandbox's address


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("day2")
    src = _new_service(NAME, root / NAME)
    toml = src / "service.toml"
    provided = f'[tls]\nmode = "provided"\ncert = "{TLS_DIR}/cert.pem"\nkey = "{TLS_DIR}/key.pem"'
    text = toml.read_text().replace('[tls]\nmode = "self-signed"', provided)
    text = text.replace("server_names = []", f'server_names = ["{NAME}", "{ACME_NAME}"]')
    toml.write_text(text + '\n[static]\n"/static/" = "static"\n')  # a file nginx serves itself
    (src / "static").mkdir()
    (src / "static" / "app.css").write_text("body {}\n")
    assert provided in toml.read_text() and ACME_NAME in toml.read_text()
    return _build(src, root / "dist")


def _new_pair(box: Sandbox, cert: str, key: str) -> str:
    """A fresh self-signed pair for NAME at these paths; returns its SHA-256 fingerprint."""
    made = sh(box, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-days", "30", "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}",
              "-keyout", key, "-out", cert)  # fmt: skip
    assert made.returncode == 0, made.stderr
    out = sh(box, "openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert).stdout.decode()
    return out.strip().split("=", 1)[1].replace(":", "").lower()


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox, bundle: Path) -> Sandbox:
    box = make_module_sandbox()
    assert sh(box, "mkdir", "-p", f"{TLS_DIR}/archive").returncode == 0
    _new_pair(box, f"{TLS_DIR}/cert.pem", f"{TLS_DIR}/key.pem")
    ok(commands.deploy(DeployOptions(bundle), SandboxTarget(box.name)))
    return box


def _messages(result: Result) -> list[str]:
    """The MESSAGE of each journal line (`-o short`: `date host tag[pid]: message`)."""
    return [line.split("]: ", 1)[1] for line in result.data["journal"] if "]: " in line]


def _lines_with(box: Sandbox, source: str, needle: str, seconds: float = 5) -> list[dict[str, object]]:
    """The JSON lines of `source` that `logs --source` shows containing `needle` (a URI, a request
    id), waiting (bounded) for journald."""
    deadline = time.monotonic() + seconds
    while True:
        result = ok(commands.logs(NAME, SandboxTarget(box.name), source, lines=200))
        found = [json.loads(m) for m in _messages(result) if m.startswith("{") and needle in m]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_request_the_app_answers_is_in_the_journal_once_as_the_apps_line(box: Sandbox) -> None:
    """nginx's access line only where the app wrote none (render/nginx_logs.py `log_filter`)."""
    uri = "/?probe=day2-app"
    status, _, headers = get(box.address, uri, NAME)
    assert status == 200
    request_id = headers["X-Request-ID"]
    [line] = _lines_with(box, "app", request_id)  # the app's own line, with nginx's id
    assert line["status"] == 200 and line["host"] == NAME and line["path"] == "/"
    assert _lines_with(box, "nginx", uri, seconds=1) == []
    assert _lines_with(box, "nginx", request_id, seconds=0) == []


def test_what_the_app_does_not_answer_is_nginx_s_json_line_under_the_service(box: Sandbox) -> None:
    # nginx's own 404: [static]'s directory itself, never listed (the app never sees it).
    uri = "/static/?probe=day2-404"
    status, _, _ = get(box.address, uri, NAME, headers={"User-Agent": 'probe "quoted"'})
    assert status == 404
    [line] = _lines_with(box, "nginx", uri)
    assert line["status"] == 404 and line["method"] == "GET" and line["host"] == NAME
    assert line["user_agent"] == 'probe "quoted"' and line["tls"] in ("TLSv1.2", "TLSv1.3")
    assert line["upstream_status"] == ""
    # A file nginx serves itself.
    assert get(box.address, "/static/app.css?probe=day2-static", NAME)[0] == 200
    [static] = _lines_with(box, "nginx", "/static/app.css?probe=day2-static")
    assert static["status"] == 200 and static["upstream_status"] == ""
    # The redirect server (plain HTTP, no TLS).
    assert get(box.address, "/?probe=day2-http", NAME, https=False)[0] == 301
    [plain] = _lines_with(box, "nginx", "/?probe=day2-http")
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
    # One journal query, so one time order: gunicorn booted (at the deploy) before nginx answered
    # the request above.
    booted = next(i for i, m in enumerate(merged) if "Booting worker" in m)
    assert booted < next(i for i, m in enumerate(merged) if "day2-404" in m)


def test_a_local_user_cannot_forge_the_sites_lines(box: Sandbox) -> None:
    """Anyone may log with the tag; only nginx.service's lines count as the site's."""
    message = '{"time":"forged","uri":"/?probe=forged"}'
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    forged = box.exec([*as_nobody, "logger", "-t", NAME, message], check=False)
    assert forged.returncode == 0, forged.stderr
    time.sleep(0.5)
    assert _lines_with(box, "nginx", "/?probe=forged", seconds=1) == []


def test_a_502_with_the_app_stopped_is_nginx_s_line(box: Sandbox) -> None:
    """gunicorn never saw the request: nginx's line is the only one. After the sources test,
    which expects only access lines from nginx: this request also makes an error line."""
    listed = sh(
        box, "systemctl", "list-units", "--state=active", "--plain", "--no-legend", f"{NAME}-*.socket"
    )
    [socket_unit] = [line.split()[0] for line in listed.stdout.decode().splitlines() if line.strip()]
    service_unit = socket_unit.replace(".socket", ".service")
    assert sh(box, "systemctl", "stop", socket_unit, service_unit).returncode == 0
    try:
        assert get(box.address, "/?probe=day2-down", NAME)[0] == 502
    finally:
        assert sh(box, "systemctl", "start", socket_unit).returncode == 0
    [line] = _lines_with(box, "nginx", "/?probe=day2-down")
    assert line["status"] == 502 and line["upstream_status"] == "502"
    assert get(box.address, "/?probe=day2-back", NAME)[0] == 200  # socket activation again


# --- ACME challenges and a provided certificate replaced on disk ---------------------------------


def test_port_80_serves_acme_tokens_from_a_root_owned_webroot(box: Sandbox) -> None:
    token, content = "abc_DEF-123", "abc_DEF-123.thumbprint"
    challenge = f"{WEBROOT}/.well-known/acme-challenge"
    assert sh(box, "mkdir", "-p", challenge).returncode == 0  # what certbot --webroot does
    assert sh(box, "sh", "-c", f"printf %s {content} > {challenge}/{token}").returncode == 0
    status, body, headers = get(box.address, f"/.well-known/acme-challenge/{token}", NAME, https=False)
    assert (status, body, headers["Content-Type"]) == (200, content, "text/plain")
    # Only token names, no symbolic links; everything else still redirects.
    assert sh(box, "ln", "-s", f"/etc/integrator/{NAME}/tls", f"{challenge}/link").returncode == 0
    assert sh(box, "ln", "-s", f"{TLS_DIR}/key.pem", f"{challenge}/keylink").returncode == 0
    for path in ("missing", "a.b", "", "link/cert.pem", "keylink", "..%2f..%2f..%2ftls%2fkey.pem"):
        status, body, _ = get(box.address, f"/.well-known/acme-challenge/{path}", NAME, https=False)
        assert status in (301, 400, 403, 404) and "PRIVATE KEY" not in body, (path, status)
    assert get(box.address, "/.well-known/other", NAME, https=False)[0] == 301
    # root's alone: the app's user cannot put a token there.
    assert sh(box, "stat", "-c", "%U %G %a", WEBROOT).stdout.decode().split() == ["root", "root", "755"]
    as_app = sh(
        box, "setpriv", f"--reuid={NAME}", f"--regid={NAME}", "--clear-groups", "touch", f"{WEBROOT}/x"
    )
    assert as_app.returncode != 0


def _served_fingerprint(box: Sandbox) -> str:
    import hashlib
    import socket
    import ssl

    assert box.address.startswith("10.")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((box.address, 443), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def _wait_served(box: Sandbox, fingerprint: str, seconds: float = 30) -> float:
    """Seconds until nginx serves the certificate (a bounded wait, not a timed assertion)."""
    start = time.monotonic()
    while _served_fingerprint(box) != fingerprint:
        assert time.monotonic() - start < seconds, f"still the old certificate after {seconds} s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_replaced_provided_certificate_is_served_without_a_deploy(box: Sandbox) -> None:
    target = SandboxTarget(box.name)
    state = sh(
        box, "systemctl", "show", "-p", "ActiveState,UnitFileState", f"{NAME}-tls.path"
    ).stdout.decode()
    assert state.split() == ["ActiveState=active", "UnitFileState=enabled"], state
    records = len(ok(commands.releases(NAME, target)).data["releases"])
    # An operator's copy: new files renamed over the old ones, key first.
    new = _new_pair(box, f"{TLS_DIR}/new-cert.pem", f"{TLS_DIR}/new-key.pem")
    assert _served_fingerprint(box) != new
    assert sh(box, "mv", f"{TLS_DIR}/new-key.pem", f"{TLS_DIR}/key.pem").returncode == 0
    assert sh(box, "mv", f"{TLS_DIR}/new-cert.pem", f"{TLS_DIR}/cert.pem").returncode == 0
    print(f"renamed over: served after {_wait_served(box, new):.2f} s")
    # certbot's way: new files in archive/, the live names re-pointed as symbolic links.
    new = _new_pair(box, f"{TLS_DIR}/archive/cert2.pem", f"{TLS_DIR}/archive/key2.pem")
    for kind in ("key", "cert"):
        link = sh(box, "ln", "-sfn", f"archive/{kind}2.pem", f"{TLS_DIR}/.{kind}.tmp")
        assert (
            link.returncode == 0
            and sh(box, "mv", "-T", f"{TLS_DIR}/.{kind}.tmp", f"{TLS_DIR}/{kind}.pem").returncode == 0
        )
    print(f"file replaced by a symlink: served after {_wait_served(box, new):.2f} s")
    # A renewal: the links re-pointed again; the files they pointed to stay as they were.
    new = _new_pair(box, f"{TLS_DIR}/archive/cert3.pem", f"{TLS_DIR}/archive/key3.pem")
    for kind in ("key", "cert"):
        link = sh(box, "ln", "-sfn", f"archive/{kind}3.pem", f"{TLS_DIR}/.{kind}.tmp")
        moved = sh(box, "mv", "-T", f"{TLS_DIR}/.{kind}.tmp", f"{TLS_DIR}/{kind}.pem")
        assert link.returncode == 0 and moved.returncode == 0
    print(f"symlink re-pointed: served after {_wait_served(box, new):.2f} s")
    assert len(ok(commands.releases(NAME, target)).data["releases"]) == records  # no deploy
    reloads = sh(box, "journalctl", "-u", f"{NAME}-tls.service", "--no-pager", "-o", "cat").stdout.decode()
    assert f"Finished {NAME}-tls.service" in reloads, reloads


@contextlib.contextmanager
def pebble(box: Sandbox, work: Path) -> Iterator[str]:
    """pebble (Debian's test-only ACME server) on 127.0.0.1, validating HTTP-01 on port 80 of
    the sandbox: its mock DNS (pebble-challtestsrv) answers every name with the sandbox's address
    and no IPv6 one. Both stopped afterwards. Yields the ACME directory URL."""
    for tool in ("pebble", "pebble-challtestsrv", "certbot"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: bash scripts/setup.sh installs it", pytrace=False)
    key, cert = work / "pebble-key.pem", work / "pebble-cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=pebble", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    config = {"pebble": {"listenAddress": "127.0.0.1:14480", "managementListenAddress": "127.0.0.1:15480",
                         "certificate": str(cert), "privateKey": str(key), "httpPort": 80, "tlsPort": 443,
                         "ocspResponderURL": "", "externalAccountBindingRequired": False}}  # fmt: skip
    (work / "pebble.json").write_text(json.dumps(config))
    dns = ["pebble-challtestsrv", "-defaultIPv4", box.address, "-defaultIPv6", "",
           "-dns01", "127.0.0.1:18053", "-http01", "", "-https01", "", "-tlsalpn01", "",
           "-management", "127.0.0.1:18055"]  # fmt: skip
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    acme = ["pebble", "-config", str(work / "pebble.json"), "-dnsserver", "127.0.0.1:18053"]
    log = open(work / "pebble.log", "wb")  # noqa: SIM115 (closed below)
    procs = [subprocess.Popen(argv, stdout=log, stderr=log, env=env) for argv in (dns, acme)]
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", 14480), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (work / "pebble.log").read_text()
                time.sleep(0.1)
        yield "https://127.0.0.1:14480/dir"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        log.close()


def test_certbot_webroot_renewal_from_a_local_acme_server_is_served(box: Sandbox, tmp_path: Path) -> None:
    """The whole path with real parts: certbot --webroot writes the token into the service's
    webroot (the sandbox's file system, from this machine), pebble fetches it over port 80 of the
    site, issues, and the new pair copied over the provided one is served without a deploy."""
    webroot = box.paths.root / WEBROOT.lstrip("/")
    with pebble(box, tmp_path) as directory:
        dirs = [f"--{kind}-dir={tmp_path / kind}" for kind in ("config", "work", "logs")]
        certbot = ["certbot", "certonly", "--non-interactive", "--agree-tos",
                   "--register-unsafely-without-email", "--server", directory, "--no-verify-ssl",
                   "--webroot", "-w", str(webroot), "-d", ACME_NAME]  # fmt: skip
        issued = subprocess.run([*certbot, *dirs], capture_output=True, text=True, timeout=180)
        assert issued.returncode == 0, issued.stdout + issued.stderr + (tmp_path / "pebble.log").read_text()
    live = tmp_path / "config" / "live" / ACME_NAME
    chain = (live / "fullchain.pem").read_text()
    leaf = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf)).hexdigest()
    for kind, src in (("key", live / "privkey.pem"), ("cert", live / "fullchain.pem")):
        box.copy_in(src.resolve(), f"{TLS_DIR}/acme-{kind}.pem")  # live/ holds symlinks; staged, then renamed
    for kind in ("key", "cert"):
        assert sh(box, "mv", f"{TLS_DIR}/acme-{kind}.pem", f"{TLS_DIR}/{kind}.pem").returncode == 0
    try:
        print(f"pebble-issued certificate served after {_wait_served(box, fingerprint):.2f} s")
    except AssertionError:  # what the watch and nginx did instead
        journal = ["journalctl", "-u", f"{NAME}-tls.service", "-u", "nginx.service", "-n", "20", "--no-pager"]
        print(sh(box, *journal).stdout.decode())
        raise
    issuer = sh(box, "openssl", "x509", "-noout", "-issuer", "-in", f"{TLS_DIR}/cert.pem").stdout.decode()
    assert "Pebble" in issuer, issuer


def test_uninstall_removes_the_watch(box: Sandbox) -> None:
    ok(commands.uninstall(NAME, SandboxTarget(box.name)))
    for unit in (f"{NAME}-tls.path", f"{NAME}-tls.service"):
        assert sh(box, "test", "-e", f"/etc/systemd/system/{unit}").returncode != 0
        state = sh(box, "systemctl", "show", "-p", "LoadState,ActiveState", unit).stdout.decode()
        assert state.split() == ["LoadState=not-found", "ActiveState=inactive"], state
