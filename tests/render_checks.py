"""Helpers for the render tests: golden cases, and real `systemd-analyze` / `nginx -t` runs.

The checks run the real tools on the real rendered text, offline, in a temporary directory:
systemd-analyze gets a temporary root (`--root=`), nginx a temporary prefix and a main
nginx.conf shaped like each distro's stock one. Nothing on this machine is read or changed
except the host's own unit files, which are copied in as the units' dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import pytest

from integrator.layout import Layout, profile
from integrator.render import RenderedFile, render_all
from integrator.render.commands import write_below
from integrator.spec import ServiceSpec, load_spec

GOLDEN = Path(__file__).parent / "golden"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
HOST_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))


# --- golden cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """tests/golden/<name>/: service.toml, case.json (distro, nginx_version, release_id), expected/."""

    name: str
    spec: ServiceSpec
    distro: str
    nginx_version: tuple[int, int, int]
    release_id: str

    @property
    def dir(self) -> Path:
        return GOLDEN / self.name

    @property
    def layout(self) -> Layout:
        return Layout.for_spec(self.spec, self.distro)

    def render(self) -> list[RenderedFile]:
        return render_all(self.spec, self.layout, self.release_id, nginx_version=self.nginx_version)


def load_case(case_dir: Path) -> Case:
    meta = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    return Case(
        name=case_dir.name,
        spec=load_spec(case_dir),
        distro=meta["distro"],
        nginx_version=tuple(meta["nginx_version"]),
        release_id=meta["release_id"],
    )


CASES = [load_case(d) for d in sorted(GOLDEN.iterdir()) if (d / "service.toml").is_file()]
DEFAULT = next(case for case in CASES if case.name == "debian_default")


# --- tools: required in CI, skipped with a reason elsewhere -------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_tool(name: str, install_hint: str) -> str:
    """The tool's path; a missing tool fails the test under CI=true and skips it otherwise."""
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        message = f"{name} is not installed here ({install_hint})"
        if in_ci():
            pytest.fail(message + ": required when CI=true", pytrace=False)
        pytest.skip(message)
    return path


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


# --- systemd --------------------------------------------------------------------------------


def systemd_root(root: Path, files: Iterable[RenderedFile]) -> Path:
    """A root for `systemd-analyze --root=`: the rendered files, the host's targets and slices
    (the units' default dependencies) and a fake executable for every Exec*= binary."""
    unit_dir = root / "usr/lib/systemd/system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    host_dir = next((d for d in HOST_UNIT_DIRS if (d / "sysinit.target").is_file()), None)
    if host_dir is None:
        pytest.fail("this machine has systemd-analyze but no sysinit.target to copy", pytrace=False)
    for pattern in ("*.target", "*.slice"):
        for unit in host_dir.glob(pattern):
            shutil.copy(unit, unit_dir / unit.name)
    for f in files:
        write_below(root, f)
        for binary in exec_binaries(f):
            fake = root / binary.relative_to("/")
            fake.parent.mkdir(parents=True, exist_ok=True)
            fake.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            fake.chmod(0o755)
    return root


def exec_binaries(f: RenderedFile) -> list[PurePosixPath]:
    """The programs a unit runs (ExecStart=, ExecReload=, ...), without systemd's prefixes."""
    if f.path.suffix != ".service":
        return []
    found = re.findall(
        r"^Exec(?:Start|Stop|Reload|Condition)[A-Za-z]*=[-@:+!]*(\S+)", f.content, flags=re.MULTILINE
    )
    return [PurePosixPath(path) for path in found]


def unit_paths(root: Path, files: Iterable[RenderedFile]) -> list[str]:
    units = (".service", ".socket", ".path", ".timer")
    return [str(root / f.path.relative_to("/")) for f in files if f.path.suffix in units]


def exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output
    return float(match.group(1))


# --- nginx ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootedLayout(Layout):
    """The real layout with nginx's and the certificates' paths moved below `prefix`, so a
    temporary nginx prefix holds everything the rendered site refers to."""

    prefix: str = "/"

    @classmethod
    def below(cls, prefix: Path, spec: ServiceSpec, distro: str) -> RootedLayout:
        moved = replace(
            profile(distro),
            nginx_conf_d=f"{prefix}/etc/nginx/conf.d",
            tls_dir=f"{prefix}/etc/integrator",
        )
        return cls(spec.name, moved, str(prefix))

    @property
    def nginx_include_dir(self) -> PurePosixPath:
        return PurePosixPath(self.prefix) / "etc/nginx/integrator"


def nginx_version(nginx: str) -> tuple[int, int, int]:
    """The installed nginx's version (`nginx -v` prints to stderr), to render its syntax."""
    out = run([nginx, "-v"])
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out.stderr + out.stdout)
    assert match, out.stderr
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def self_signed(directory: Path, openssl: str) -> tuple[Path, Path]:
    """A throwaway P-256 certificate; ECDSA keeps generation instant."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    argv += ["-nodes", "-days", "2", "-subj", "/CN=integrator-test", "-keyout", str(key), "-out", str(cert)]
    result = run(argv)
    assert result.returncode == 0, result.stderr
    return cert, key


def install_certificate(layout: Layout, cert: Path, key: Path) -> None:
    for source, target in ((cert, layout.tls_cert), (key, layout.tls_key)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)


def nginx_user(distro: str) -> str | None:
    """`user` for the mirrored nginx.conf: the distro's account when it exists here (nginx -t as
    root resolves it), else nobody with its own group; as non-root nginx ignores `user` with a
    warning, so it is left out."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    try:
        account = pwd.getpwnam(profile(distro).nginx_user)
    except KeyError:
        account = pwd.getpwnam("nobody")
    return f"{account.pw_name} {grp.getgrgid(account.pw_gid).gr_name}"


def main_conf(prefix: Path, distro: str, *, stock_default: bool) -> str:
    """A main nginx.conf shaped like the distro's stock one, every path below `prefix`."""
    user = nginx_user(distro)
    head = [f"user {user};"] if user else []
    head += ["worker_processes auto;", f"pid {prefix}/nginx.pid;", "events { worker_connections 768; }"]
    temp = [
        f"{kind}_temp_path {prefix}/tmp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    ]
    http = ["sendfile on;", "tcp_nopush on;", "default_type application/octet-stream;", *temp]
    http.append(f"access_log {prefix}/access.log;")
    if distro == "debian":  # Debian's http-level TLS lines, which the sites' include overrides
        http += ["ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;", "ssl_prefer_server_ciphers on;", "gzip on;"]
        http += [f"include {prefix}/etc/nginx/conf.d/*.conf;", f"include {prefix}/etc/nginx/sites-enabled/*;"]
    else:  # RHEL: conf.d, then the default server inline in nginx.conf
        http += ["keepalive_timeout 65;", f"include {prefix}/etc/nginx/conf.d/*.conf;"]
        http += _rhel_default_server(prefix) if stock_default else []
    return "\n".join([*head, "http {", *("    " + line for line in http), "}", ""])


def _rhel_default_server(prefix: Path) -> list[str]:
    return [
        "server { listen 80; listen [::]:80; server_name _; root /usr/share/nginx/html;",
        f"    include {prefix}/etc/nginx/default.d/*.conf; }}",
    ]


DEBIAN_DEFAULT_SITE = """\
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    root /var/www/html;
    index index.html index.htm index.nginx-debian.html;
    server_name _;
    location / { try_files $uri $uri/ =404; }
}
"""


def nginx_prefix(prefix: Path, distro: str, *, stock_default: bool) -> Path:
    """Create the prefix's directories and main config; returns the nginx.conf path."""
    for sub in ("etc/nginx/conf.d", "etc/nginx/sites-enabled", "etc/nginx/default.d", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    if distro == "debian" and stock_default:
        (prefix / "etc/nginx/sites-enabled/default").write_text(DEBIAN_DEFAULT_SITE, encoding="utf-8")
    conf = prefix / "etc/nginx/nginx.conf"
    conf.write_text(main_conf(prefix, distro, stock_default=stock_default), encoding="utf-8")
    return conf


def nginx_test(nginx: str, prefix: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the temporary prefix; -e keeps even the first error-log open away from /var/log."""
    return run([nginx, "-t", "-q", "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "error.log")])
