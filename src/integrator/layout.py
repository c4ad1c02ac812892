"""Where things live on a host, for one service and one distro family.

One object answers every "which path?" question, so renderers, host actions, `plan` and
`uninstall` cannot disagree. Pure data: nothing here touches the file system.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import UsageError
from .slots import LEGACY, SLOTS, Slot
from .spec import DISTROS, ServiceSpec, check_service_name


@dataclass(frozen=True)
class DistroProfile:
    """What differs between Debian-like and RHEL-like hosts."""

    name: str
    nginx_user: str  # the group that may connect to the app's unix socket
    nginx_conf_d: str  # read by the stock nginx.conf on both families
    tls_dir: str  # certificates for this service live below it
    selinux: bool  # whether SELinux labels must be applied after writing files


PROFILES: dict[str, DistroProfile] = {
    "debian": DistroProfile(
        name="debian",
        nginx_user="www-data",
        nginx_conf_d="/etc/nginx/conf.d",
        tls_dir="/etc/integrator",
        selinux=False,
    ),
    "rhel": DistroProfile(
        name="rhel",
        nginx_user="nginx",
        nginx_conf_d="/etc/nginx/conf.d",
        tls_dir="/etc/integrator",
        selinux=True,
    ),
}


def profile(name: str) -> DistroProfile:
    """The profile for `--distro NAME`; an unknown name is a usage error, not a default."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown distro {name!r}: use one of {', '.join(DISTROS)}") from None


P = PurePosixPath
# conf.d/00-integrator-catch-all-<http|https>-<port>.conf: sorts before every site (service names
# start with a letter), so nginx takes it as the port's default server (render/nginx_shared.catch_all).
CATCH_ALL_PREFIX = "00-integrator-catch-all-"
# One directory per service below it (`Layout.state_dir`): how `list` finds what integrator manages.
STATE_ROOT = P("/var/lib/integrator")
# What a remote command (--ssh, --host) stages on the host: the cached host tool in `tool/`, each
# run's uploads (bundle, secrets) in a fresh `staging/run-*`. Root-only (0700), created and checked
# (owner, mode, no symlink, from `/` down) before every use by host/stager.py; never below a
# world-writable directory such as /tmp or /var/tmp, and not below STATE_ROOT, where names are services.
REMOTE_ROOT = P("/var/cache/integrator-host")


@dataclass(frozen=True)
class Layout:
    """Paths for service `name` on a host with `profile`. The name is checked here too: no
    path is ever made from a name service.toml would refuse (`../srv/www`, `default`)."""

    name: str
    profile: DistroProfile

    def __post_init__(self) -> None:
        check_service_name(self.name)

    @classmethod
    def for_spec(cls, spec: ServiceSpec, distro: str = "debian") -> Layout:
        return cls(spec.name, profile(distro))

    # --- the release tree -------------------------------------------------------------
    @property
    def root(self) -> P:
        return P("/opt") / self.name

    @property
    def releases(self) -> P:
        return self.root / "releases"

    def release(self, release_id: str) -> P:
        return self.releases / release_id

    def venv(self, release_id: str) -> P:
        """The release's venv: a symlink to the one of `venvs` built for its lock and Python."""
        return self.release(release_id) / "venv"

    @property
    def venvs(self) -> P:
        """Venvs shared by releases of identical lock and Python (a venv cannot move: host/venvs.py)."""
        return self.root / "venvs"

    def shared_venv(self, name: str) -> P:
        return self.venvs / name

    def app_dir(self, release_id: str) -> P:
        return self.release(release_id) / "app"

    def gunicorn_conf(self, release_id: str) -> P:
        return self.release(release_id) / "gunicorn.conf.py"

    @property
    def current(self) -> P:
        """Symlink to the serving release; for people and tools, never read by the unit."""
        return self.root / "current"

    def static_dir(self, directory: str) -> P:
        """A [static] directory of the serving release (nginx follows `current` to it)."""
        from .bundle.manifest_data import STATIC  # where the bundle keeps them: one place

        return self.current / STATIC / directory

    # --- state and configuration owned by integrator ------------------------------------
    @property
    def state_dir(self) -> P:
        """Release records and the deploy lock (root only)."""
        return STATE_ROOT / self.name

    @property
    def releases_record(self) -> P:
        return self.state_dir / "releases.json"

    @property
    def ownership_record(self) -> P:
        """What integrator created for the service (user, group, directories, files): the only
        things uninstall and a failed first deploy may remove (`host/ownership.py`)."""
        return self.state_dir / "owned.json"

    @property
    def lock_file(self) -> P:
        return self.state_dir / "deploy.lock"

    @property
    def etc_dir(self) -> P:
        return P("/etc/integrator") / self.name

    @property
    def credentials_dir(self) -> P:
        """Secrets, root:root 0700, handed to the unit with LoadCredential=."""
        return self.etc_dir / "credentials"

    @property
    def tls_cert(self) -> P:
        return P(self.profile.tls_dir) / self.name / "tls" / "cert.pem"

    @property
    def tls_key(self) -> P:
        return P(self.profile.tls_dir) / self.name / "tls" / "key.pem"

    @property
    def acme_webroot(self) -> P:
        """ACME HTTP-01 tokens (`certbot --webroot -w` this): root:root 0755, served by nginx
        on the site's plain-HTTP port below /.well-known/acme-challenge/."""
        return self.etc_dir / "acme"

    @property
    def local_ca_dir(self) -> P:
        """The host's own CA for `[tls] mode = "local-ca"`, shared by its services. `-` cannot be
        in a service name, so no service's directory can ever be this one."""
        return P(self.profile.tls_dir) / "local-ca"

    @property
    def local_ca_cert(self) -> P:
        return self.local_ca_dir / "ca.pem"

    @property
    def local_ca_key(self) -> P:
        """Root only (0600); an operator may place the pair here before the first deploy."""
        return self.local_ca_dir / "ca.key"

    @property
    def app_state_dir(self) -> P:
        """The app's own writable directory (StateDirectory=)."""
        return P("/var/lib") / self.name

    # --- systemd ---------------------------------------------------------------------
    def slot(self, name: str) -> Slot:
        """One of the two slots (`SLOTS`) a release serves from: NAME-a.socket + NAME-a.service
        on /run/NAME/gunicorn-a.sock, and the same with b. A deploy starts the slot that is not
        serving, points the serving link at it and drains the other (host/drain.py)."""
        if name not in SLOTS:
            raise ValueError(f"no slot {name!r}")
        return Slot(name, f"{self.name}-{name}", self.unit_dir, self.runtime_dir / f"gunicorn-{name}.sock")

    @property
    def slots(self) -> tuple[Slot, Slot]:
        return (self.slot(SLOTS[0]), self.slot(SLOTS[1]))

    @property
    def legacy(self) -> Slot:
        """The one NAME.socket + NAME.service pair of deploys before slots: a host deployed
        that way is taken over by the next deploy, which drains it and removes its units."""
        return Slot(LEGACY, self.name, self.unit_dir, self.runtime_dir / "gunicorn.sock")

    @property
    def all_slots(self) -> tuple[Slot, Slot, Slot]:
        """Every unit pair the service may have on a host: what uninstall, logs and status cover."""
        return (*self.slots, self.legacy)

    @property
    def upstream_link(self) -> P:
        """The path nginx's upstream names: a symlink to the serving slot's socket, repointed by
        a rename when another slot takes over (no nginx reload). In the root-owned release tree,
        so it survives a reboot (the socket it names is made by its enabled socket unit) and
        the app's user cannot repoint it."""
        return self.root / "serving.sock"

    @property
    def journal_tag(self) -> str:
        """SYSLOG_IDENTIFIER of the app's lines (SyslogIdentifier=, the same in both slots) and
        of nginx's lines for the site (its syslog `tag=`). Service names already fit nginx's
        tags: at most 32 characters of [a-z0-9_]."""
        return self.name

    @property
    def unit_dir(self) -> P:
        return P("/etc/systemd/system")

    @property
    def tls_watch_unit(self) -> str:
        """Watches a provided certificate and key; `-` is in no service name, so no clash."""
        return f"{self.name}-tls.path"

    @property
    def tls_reload_unit(self) -> str:
        """Started by the watch: reloads nginx."""
        return f"{self.name}-tls.service"

    @property
    def tls_watch_unit_paths(self) -> tuple[P, P]:
        return (self.unit_dir / self.tls_watch_unit, self.unit_dir / self.tls_reload_unit)

    @property
    def runtime_dir(self) -> P:
        return P("/run") / self.name

    @property
    def user(self) -> str:
        return self.name

    # --- nginx -----------------------------------------------------------------------
    @property
    def nginx_site(self) -> P:
        return P(self.profile.nginx_conf_d) / f"{self.name}.conf"

    @property
    def nginx_include_dir(self) -> P:
        """Shared snippets (TLS, proxy headers, security headers), outside conf.d so the
        stock `include conf.d/*.conf` does not load them at http{} level."""
        return P("/etc/nginx/integrator")

    @property
    def nginx_tls_include(self) -> P:
        return self.nginx_include_dir / "tls.conf"

    @property
    def nginx_proxy_include(self) -> P:
        return self.nginx_include_dir / "proxy.conf"

    @property
    def nginx_headers_include(self) -> P:
        return self.nginx_include_dir / "security-headers.conf"

    def nginx_reads(self, path: P) -> bool:
        """A file nginx loads at start and reload (its configuration, this service's generated
        certificate): writing one needs a reload; any other file does not."""
        return P("/etc/nginx") in path.parents or path.parent == self.tls_cert.parent

    def nginx_catch_all(self, port: int, tls: bool) -> P:
        """Shared by every service on `port`: one file per port and kind, never per service."""
        kind = "https" if tls else "http"
        return P(self.profile.nginx_conf_d) / f"{CATCH_ALL_PREFIX}{kind}-{port}.conf"
