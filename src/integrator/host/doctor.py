"""`doctor` as a pre-deploy check: the facts a deploy depends on, read once, then a pure verdict.

Every refusal a deploy would make up front has its problem here (not root, no systemd as PID 1,
a missing tool, no venv module for the host's python3, nginx -t failing, and, when run from a
bundle, no build for this host's Python, a site that clashes with another, a port another
program holds, secrets this systemd cannot hand over, a name whose user or paths are someone
else's), so `doctor` exits non-zero exactly where `deploy` would refuse. Certificates
close to expiry are warnings (a deploy renews those it made); expired ones are problems.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import IntegratorError
from ..layout import Layout
from ..spec import ServiceSpec
from . import nginxconf, ownership, ports, tls, units
from .facts import HostFacts, probe_host, systemd_booted
from .secrets import require_credentials
from .system import SYSTEM_PATH, System

TOOLS = ("systemctl", "journalctl", "nginx", "openssl", "useradd")
VENV_PROBE = "import venv"  # venvs are made --without-pip: ensurepip (python3-venv on Debian) is not needed


@dataclass(frozen=True)
class BundleFacts:
    """The bundle `doctor` runs from (`python3 BUNDLE.pyz doctor`): what it would deploy."""

    spec: ServiceSpec
    manifest: object  # bundle.manifest.Manifest: its targets decide the venv
    owned: ownership.Owned | None = None  # what integrator created for the name (None: not read)
    live: ownership.Live | None = None  # the name's user, group and paths as they are
    owned_error: str | None = None  # an ownership record that cannot be believed


@dataclass(frozen=True)
class CertCheck:
    path: PurePosixPath
    cert: tls.CertFacts
    renewed_by_deploy: bool  # self-signed and local-ca certificates are; provided ones are not


@dataclass(frozen=True)
class DoctorFacts:
    is_root: bool
    systemd_pid1: bool
    missing_tools: tuple[str, ...] = ()
    host: HostFacts | None = None
    host_error: str | None = None  # why the host could not be probed (distro, python3, ...)
    glibc: str | None = None
    venv_ok: bool = True
    nginx_test: str | None = None  # `nginx -t` output when it fails
    servers: tuple[nginxconf.Server, ...] | None = None  # from `nginx -T`; None when unreadable
    port_holders: tuple[tuple[int, ports.Holder], ...] = ()  # who listens on the bundle's ports
    bundle: BundleFacts | None = None
    certs: tuple[CertCheck, ...] = field(default_factory=tuple)


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)  # deploy would refuse, or serving is broken
    warnings: list[str] = field(default_factory=list)  # fine today, act soon
    notes: list[str] = field(default_factory=list)


def diagnose(f: DoctorFacts, now: float) -> Verdict:
    """Facts in, problems out (pure)."""
    v = Verdict()
    if not f.is_root:
        v.problems.append("not running as root: deploy, rollback and uninstall need root (sudo)")
    if not f.systemd_pid1:
        v.problems.append("systemd is not PID 1 here (no /run/systemd/system): deploy needs a systemd host")
    v.problems += [f"missing tool: {t}" for t in f.missing_tools]
    if f.host_error:
        v.problems.append(f.host_error)
    if f.host is not None and not f.venv_ok:
        v.problems.append(f"{f.host.python} cannot create venvs ({VENV_PROBE} fails): install its standard "
                          f"library (Debian: libpython{f.host.python_short}-stdlib)")  # fmt: skip
    if f.nginx_test is not None:
        v.problems.append(f"nginx -t fails: {f.nginx_test}")
    if f.bundle is not None:
        _bundle_verdict(f, f.bundle, v)
    for check in f.certs:
        said = tls.expiry_note(check.path, check.cert, now, check.renewed_by_deploy)
        if said is not None:
            (v.problems if said[0] == "problem" else v.warnings).append(said[1])
    v.problems = list(dict.fromkeys(v.problems))  # one process on [::] and 0.0.0.0 is said once
    return v


def _bundle_verdict(f: DoctorFacts, bundle: BundleFacts, v: Verdict) -> None:
    from ..bundle.venv import pick_target

    spec = bundle.spec
    if f.host is not None:
        try:
            pick_target(bundle.manifest, f.host.python_short, f.host.machine, f.glibc)  # type: ignore[arg-type]
        except IntegratorError as exc:
            v.problems.append(exc.message)
        try:
            require_credentials(spec, f.host.systemd_version)
        except IntegratorError as exc:
            v.problems.append(exc.message)
    if f.servers is not None:
        own = str(Layout.for_spec(spec, f.host.distro if f.host else "debian").nginx_site)
        clashes = nginxconf.clashes(list(f.servers), spec, own)
        if clashes:  # worded as the deploy's own refusal (nginxconf.check_site_fits)
            v.problems.append(f"{spec.name}'s nginx site would clash: {'; '.join(dict.fromkeys(clashes))}")
    for port, holder in f.port_holders:
        if port in (spec.http.http_port, spec.http.https_port) and not holder.command.startswith("nginx"):
            v.problems.append(f"{ports.describe_holders(port, [holder])}: nginx cannot listen there")
    if bundle.owned_error:
        v.problems.append(bundle.owned_error)
    elif bundle.owned is not None and bundle.live is not None:
        conflicts = ownership.conflicts(Layout.for_spec(spec, f.host.distro if f.host else "debian"),
                                        bundle.owned, bundle.live)  # fmt: skip
        if conflicts:
            v.problems.append(ownership.refusal(conflicts))
    if spec.secrets.files:
        v.notes.append(f"deploying {spec.name} needs --secret NAME=FILE for: {', '.join(spec.secrets.files)}")


# --- probes ----------------------------------------------------------------------------------------


def probe(system: System, bundle: Path | None, certs: tuple[CertCheck, ...] = ()) -> DoctorFacts:
    """Read what `diagnose` needs; a probe that fails becomes a fact, never an exception."""
    from ..bundle.venv import host_glibc

    missing = tuple(
        t for t in TOOLS if not any(os.access(f"{d}/{t}", os.X_OK) for d in SYSTEM_PATH.split(":"))
    )
    host: HostFacts | None = None
    host_error = None
    try:
        host = probe_host(system)
    except IntegratorError as exc:
        host_error = exc.message
    venv_ok = host is None or system.run([host.python, "-c", VENV_PROBE], check=False).ok
    nginx = units.nginx_test(system) if "nginx" not in missing else None
    dump = system.run(["nginx", "-T", "-q"], check=False) if nginx is not None and nginx.ok else None
    bundle_facts = _bundle_facts(system, bundle, host) if bundle is not None else None
    return DoctorFacts(
        is_root=system.is_root(),
        systemd_pid1=systemd_booted(system),
        missing_tools=missing,
        host=host,
        host_error=host_error,
        glibc=host_glibc(),
        venv_ok=venv_ok,
        nginx_test=None if nginx is None or nginx.ok else nginx.output(),
        servers=tuple(nginxconf.parse_servers(dump.stdout)) if dump is not None and dump.ok else None,
        bundle=bundle_facts,
        port_holders=_holders(system, bundle_facts.spec) if bundle_facts else (),
        certs=certs,
    )


def _holders(system: System, spec: ServiceSpec) -> tuple[tuple[int, ports.Holder], ...]:
    proc = system.path("/proc")
    return tuple((port, h) for port in (spec.http.http_port, spec.http.https_port) for ipv6 in (False, True)
                 for h in ports.port_holders(proc, port, ipv6))  # fmt: skip


def _bundle_facts(system: System, bundle: Path, host: HostFacts | None) -> BundleFacts:
    from .bundleio import open_bundle

    info = open_bundle(bundle)  # verified: a tampered bundle is an error here too
    if host is None:
        return BundleFacts(info.spec, info.manifest)
    layout = Layout.for_spec(info.spec, host.distro)
    try:
        owned = ownership.load(system, layout) or ownership.Owned(layout.name)
    except IntegratorError as exc:
        return BundleFacts(info.spec, info.manifest, owned_error=exc.message)
    return BundleFacts(info.spec, info.manifest, owned, ownership.probe(system, layout))


def cert_check(system: System, spec: ServiceSpec, layout: Layout) -> CertCheck | None:
    """The certificate a deployed service serves, if there is one to read."""
    files = tls.tls_files(spec, layout)
    cert = tls.cert_facts(system, files.cert)
    return None if cert is None else CertCheck(files.cert, cert, spec.tls.mode != "provided")
