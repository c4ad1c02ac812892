"""`doctor` as a pre-deploy check, as a table: host facts in, problems out (pure, no host).

Each row is a host on which `deploy` would refuse (or serve something broken) and the problem
`doctor` must name; the first row is a host fit for the deploy, where it names none.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath

import pytest

from integrator.bundle.manifest import InstallTarget, Manifest
from integrator.host import doctor, nginxconf, ownership, ports, tls
from integrator.host.facts import HostFacts
from integrator.host.system import Account
from integrator.spec import ServiceSpec

from .spec_edit import edit, make

NOW = 1_800_000_000.0
DAY = 86400
HOST = HostFacts(
    distro="debian",
    pretty_name="Debian GNU/Linux 12 (bookworm)",
    hostname="h1",
    nginx_version=(1, 22, 1),
    python="/usr/bin/python3",
    python_version=(3, 11, 2),
    machine="x86_64",
    systemd_version=252,
    selinux=False,
)
SPEC = make("shop", "1.0", "shop:app", http={"server_names": ("shop.example",)})


def _manifest(spec: ServiceSpec, *pythons: str) -> Manifest:
    targets = tuple(
        InstallTarget(
            py, "x86_64", "manylinux_2_17_x86_64", None, f"payload/locks/cp{py.replace('.', '')}.txt"
        )
        for py in pythons
    )
    return Manifest(spec.name, spec.version, None, False, "2026-01-01T00:00:00Z", "integrator 0.1.0",
                    "shop-1.0-py3-none-any.whl", spec.to_dict(), targets, {})  # fmt: skip


def _bundle(spec: ServiceSpec = SPEC, *pythons: str) -> doctor.BundleFacts:
    return doctor.BundleFacts(spec, _manifest(spec, *(pythons or ("3.9", "3.11"))))


def _cert(left_days: float, renewed: bool) -> doctor.CertCheck:
    facts = tls.CertFacts(NOW - 100 * DAY, NOW + left_days * DAY, frozenset({"shop.example"}), True)
    return doctor.CertCheck(PurePosixPath("/etc/integrator/shop/tls/cert.pem"), facts, renewed)


POSTGRES = Account("shop", 108, 115, "PostgreSQL administrator")
FORGED = "/var/lib/integrator/shop/owned.json is group- or world-writable"


def _live(user: Account | None = None) -> ownership.Live:
    return ownership.Live(user, None, {}, {})


FIT = doctor.DoctorFacts(
    is_root=True, systemd_pid1=True, host=HOST, glibc="2.36", servers=(), bundle=_bundle()
)
STOCK_DEFAULT = nginxconf.Server("/etc/nginx/sites-enabled/default", {80}, {"_"}, {80})
OTHER_SITE = nginxconf.Server("/etc/nginx/conf.d/alpha.conf", {80, 443}, {"shop.example"}, set())
PYTHON_443 = ports.Holder(59, "/usr/bin/python3 -m http.server 443")

CASES = [
    ("fit for a deploy", FIT, []),
    ("not root", replace(FIT, is_root=False), ["not running as root: deploy, rollback and uninstall"]),
    ("no systemd", replace(FIT, systemd_pid1=False), ["systemd is not PID 1 here"]),
    ("no nginx", replace(FIT, missing_tools=("nginx",)), ["missing tool: nginx"]),
    ("unsupported distro", replace(FIT, host=None, host_error="unsupported host distribution 'Alpine'"),
     ["unsupported host distribution 'Alpine'"]),
    ("no venv module", replace(FIT, venv_ok=False),
     ["/usr/bin/python3 cannot create venvs (import venv fails): install its standard library "
      "(Debian: libpython3.11-stdlib)"]),
    ("nginx -t fails", replace(FIT, nginx_test="nginx: [emerg] unknown directive \"x\""),
     ["nginx -t fails: nginx: [emerg] unknown directive \"x\""]),
    ("no build for the host's Python", replace(FIT, bundle=_bundle(SPEC, "3.9", "3.12")),
     ["shop 1.0 has no build for this host's Python 3.11 on x86_64 (it has: Python 3.9 on x86_64, "
      "Python 3.12 on x86_64)"]),
    ("a server name served by another site", replace(FIT, servers=(STOCK_DEFAULT, OTHER_SITE)),
     ["shop's nginx site would clash: /etc/nginx/conf.d/alpha.conf already serves shop.example on port 80; "
      "/etc/nginx/conf.d/alpha.conf already serves shop.example on port 443"]),
    ("a second default server", replace(FIT, servers=(STOCK_DEFAULT,),
                                        bundle=_bundle(edit(SPEC, http={"default_server": True}))),
     ["shop's nginx site would clash: /etc/nginx/sites-enabled/default already is nginx's default server "
      "for port 80"]),
    ("a port held by another program", replace(FIT, port_holders=((443, PYTHON_443), (443, PYTHON_443))),
     ["port 443 is held by pid 59 (/usr/bin/python3 -m http.server 443) (stop it, or choose other ports in "
      "[http]): nginx cannot listen there"]),
    ("secrets on a systemd without credentials",
     replace(FIT, host=replace(HOST, systemd_version=246),
             bundle=_bundle(edit(SPEC, secrets={"files": ("db",)}))),
     ["shop needs secrets (db), handed over as systemd credentials (LoadCredential=, systemd >= 247); "
      "this host has systemd 246"]),
    ("a name whose user is someone else's",
     replace(FIT, bundle=replace(_bundle(), owned=ownership.Owned("shop"), live=_live(user=POSTGRES))),
     ["user shop exists and was not created by integrator: choose another service name"]),
    ("an ownership record that cannot be believed",
     replace(FIT, bundle=replace(_bundle(), owned_error=FORGED)),
     [FORGED]),
    ("an expired certificate", replace(FIT, certs=(_cert(-1, renewed=True),)),
     ["/etc/integrator/shop/tls/cert.pem has expired (the next deploy renews it)"]),
]  # fmt: skip


@pytest.mark.parametrize(("facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_doctor_names_what_a_deploy_would_refuse(facts: doctor.DoctorFacts, expected: list[str]) -> None:
    problems = doctor.diagnose(facts, NOW).problems
    assert len(problems) == len(expected), problems
    for said, want in zip(problems, expected):
        assert said.startswith(want), (said, want)


def test_nginx_itself_on_the_port_is_not_a_clash() -> None:
    nginx = ports.Holder(40, "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;")
    assert doctor.diagnose(replace(FIT, port_holders=((443, nginx),)), NOW).problems == []


@pytest.mark.parametrize(
    ("cert", "warnings"),
    [
        (_cert(45, renewed=True), []),
        (_cert(20.5, renewed=True),
         ["/etc/integrator/shop/tls/cert.pem expires in 20 days (the next deploy renews it)"]),
        (_cert(3.5, renewed=False),
         ["/etc/integrator/shop/tls/cert.pem expires in 3 days (replace the provided certificate)"]),
    ],
)  # fmt: skip
def test_doctor_warns_30_days_before_a_certificate_expires(
    cert: doctor.CertCheck, warnings: list[str]
) -> None:
    verdict = doctor.diagnose(replace(FIT, certs=(cert,)), NOW)
    assert verdict.warnings == warnings and verdict.problems == []


def test_a_bundle_that_needs_secrets_says_so() -> None:
    verdict = doctor.diagnose(replace(FIT, bundle=_bundle(edit(SPEC, secrets={"files": ("db", "api")}))), NOW)
    assert verdict.problems == []
    assert verdict.notes == ["deploying shop needs --secret NAME=FILE for: db, api"]
