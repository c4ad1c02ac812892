"""TLS quality and nginx start failures, end to end on one sandbox host (issue 8).

sslyze (a dev dependency) scans the deployed sites against Mozilla's intermediate profile from
this machine; its traffic goes only to the sandbox's address. The steps share one host and
build on each other: pre-deploy doctor, a port held by another program, then the deploys.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, ok, sh

pytestmark = [pytest.mark.sandbox, pytest.mark.network, pytest.mark.slow]

HOLD_443 = (
    "import socket, time\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 443))\n"
    "s.listen()\n"
    "time.sleep(600)\n"
)


@dataclass(frozen=True)
class TlsBundles:
    plain: Path  # [tls] mode = "self-signed"
    secure: Path  # [tls] mode = "local-ca", server name secure.example


@pytest.fixture(scope="module")
def tls_bundles(tmp_path_factory: pytest.TempPathFactory) -> TlsBundles:
    root = tmp_path_factory.mktemp("tls-bundles")
    plain = _build(_new_service("plain", root / "plain"), root / "dist" / "plain")
    src = _new_service("secure", root / "secure")
    toml = src / "service.toml"
    text = toml.read_text()
    text = text.replace("server_names = []", 'server_names = ["secure.example"]')
    text = text.replace('mode = "self-signed"', 'mode = "local-ca"')
    assert 'mode = "local-ca"' in text and "secure.example" in text
    toml.write_text(text)
    return TlsBundles(plain, _build(src, root / "dist" / "secure"))


@pytest.fixture(scope="module")
def box(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def _nginx_state(box: Sandbox) -> str:
    return (
        sh(box, "systemctl", "show", "-p", "ActiveState", "--value", "nginx.service").stdout.decode().strip()
    )


def _sslyze(box: Sandbox, name: str, ca_file: Path | None) -> tuple[int, dict[str, str]]:
    """Mozilla intermediate check of https://NAME on the sandbox: exit code and issues by key."""
    address = box.address
    assert address.startswith("10."), address  # the sandbox, never anything else
    argv = [sys.executable, "-m", "sslyze", "--mozilla_config=intermediate", f"{name}:443{{{address}}}"]
    if ca_file is not None:
        argv[3:3] = ["--certinfo_ca_file", str(ca_file)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    report = proc.stdout.split("COMPLIANCE AGAINST TLS CONFIGURATION", 1)
    assert len(report) == 2, proc.stdout + proc.stderr  # the scan ran to the compliance check
    print(report[1])
    issues = dict(re.findall(r"^\s+\* (\w+): (.*)$", report[1], re.M))
    return proc.returncode, issues


# --- before the first deploy ---------------------------------------------------------------------


def test_doctor_from_a_bundle_is_a_pre_deploy_check(box: Sandbox, tls_bundles: TlsBundles) -> None:
    """Exit 0 on a fresh host that fits, also without ensurepip (Debian's python3-venv): venvs are
    made --without-pip. ensurepip stays away for the rest of this module, whose deploys prove it."""
    box.copy_in(tls_bundles.secure, "/root/secure.pyz")
    fit = sh(box, "python3", "/root/secure.pyz", "doctor")
    assert fit.returncode == 0, fit.stdout.decode() + fit.stderr.decode()
    assert "no problems found" in fit.stdout.decode()
    assert sh(box, "mv", "/usr/lib/python3.11/ensurepip", "/root/ensurepip.aside").returncode == 0
    assert sh(box, "python3", "-m", "venv", "/root/with-pip").returncode != 0  # what deploys used to run
    still = sh(box, "python3", "/root/secure.pyz", "doctor")
    assert still.returncode == 0 and "no problems found" in still.stdout.decode(), still.stdout.decode()


def test_a_port_held_by_another_program_is_named_and_nginx_left_as_found(
    box: Sandbox, tls_bundles: TlsBundles
) -> None:
    target = SandboxTarget(box.name)
    held = sh(box, "systemd-run", "--unit=hold443", "python3", "-c", HOLD_443)
    assert held.returncode == 0, held.stderr
    try:
        for _ in range(50):
            if sh(box, "sh", "-c", "ss -ltn | grep -q ':443 '").returncode == 0:
                break
            time.sleep(0.1)
        doctor = sh(box, "python3", "/root/secure.pyz", "doctor")
        assert doctor.returncode == 1 and re.search(
            r"port 443 is held by pid \d+ \(\S*python3", doctor.stdout.decode()
        )
        # nginx found stopped: it cannot start, it is left stopped, and the message says why.
        assert sh(box, "systemctl", "stop", "nginx.service").returncode == 0
        result = commands.deploy(DeployOptions(tls_bundles.plain), target)
        text = "\n".join(result.lines)
        print(text)
        assert result.exit_code == 1
        assert (
            "nginx.service did not start: bind() to 0.0.0.0:443 failed (98: Address already in use)" in text
        )
        assert re.search(r"port 443 is held by pid \d+ \(\S*python3 -c", text), text
        assert _nginx_state(box) == "inactive"
        # nginx found running: the reload is refused, the old configuration keeps serving.
        assert sh(box, "systemctl", "start", "nginx.service").returncode == 0
        result = commands.deploy(DeployOptions(tls_bundles.plain), target)
        text = "\n".join(result.lines)
        assert result.exit_code == 1
        assert "nginx kept its previous configuration: bind() to 0.0.0.0:443 failed" in text, text
        assert re.search(r"port 443 is held by pid \d+ \(\S*python3 -c", text), text
        assert _nginx_state(box) == "active" and sh(box, "nginx", "-t").returncode == 0
    finally:
        sh(box, "systemctl", "stop", "hold443")


# --- TLS quality of deployed sites -------------------------------------------------------------------


def test_local_ca_site_is_fully_compliant_with_mozilla_intermediate(
    box: Sandbox, tls_bundles: TlsBundles, tmp_path: Path
) -> None:
    ok(commands.deploy(DeployOptions(tls_bundles.secure), SandboxTarget(box.name)))
    modes = sh(
        box, "stat", "-c", "%a %U", "/etc/integrator/local-ca/ca.key", "/etc/integrator/local-ca/ca.pem"
    )
    assert modes.stdout.decode().split() == ["600", "root", "644", "root"]
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(sh(box, "cat", "/etc/integrator/local-ca/ca.pem").stdout)
    code, issues = _sslyze(box, "secure.example", ca_file)
    assert issues == {} and code == 0


def test_self_signed_site_passes_every_check_but_trust(box: Sandbox, tls_bundles: TlsBundles) -> None:
    """Lifetime, versions, ciphers, curves and vulnerabilities pass; only the path validation
    cannot (no CA vouches for a self-signed certificate)."""
    ok(commands.deploy(DeployOptions(tls_bundles.plain), SandboxTarget(box.name)))
    _, issues = _sslyze(box, "plain", None)
    assert set(issues) == {"certificate_path_validation"}, issues


def test_doctor_warns_of_expiry_and_the_next_deploy_renews(box: Sandbox, tls_bundles: TlsBundles) -> None:
    """plain's certificate made to expire in 10 days: doctor warns (exit 0); the same bundle
    deployed again renews it (365 days), and doctor is quiet again."""
    target = SandboxTarget(box.name)
    tls_dir = "/etc/integrator/plain/tls"
    short = sh(box, "openssl", "req", "-x509", "-new", "-key", f"{tls_dir}/key.pem", "-days", "10",
               "-subj", "/CN=plain", "-out", f"{tls_dir}/cert.pem")  # fmt: skip
    assert short.returncode == 0, short.stderr
    report = ok(commands.doctor(None, target))
    assert report.data["problems"] == []
    assert [w for w in report.warnings if "expires in" in w] == [
        f"{tls_dir}/cert.pem expires in 9 days (the next deploy renews it)"
    ], report.warnings
    redeploy = ok(commands.deploy(DeployOptions(tls_bundles.plain), target))
    assert "configuration changed" in redeploy.lines[0], redeploy.lines
    end = sh(box, "openssl", "x509", "-noout", "-enddate", "-in", f"{tls_dir}/cert.pem").stdout.decode()
    left = (ssl.cert_time_to_seconds(end.strip().split("=", 1)[1]) - time.time()) / 86400
    assert 364 < left <= 366, end
    report = ok(commands.doctor(None, target))
    assert report.warnings == [] and report.data["problems"] == [], report.lines
