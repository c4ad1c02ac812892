"""SELinux file labels a RHEL host needs for this service, as data and as commands.

Files written by a deploy get the labels of their parent directories, which is wrong in
three places: nginx (httpd_t) must reach the app's socket, systemd must execute gunicorn
from the venv, and nginx must read a certificate generated under /etc/integrator. Each rule
is a persistent `semanage fcontext` entry (it survives relabels) applied with `restorecon`.
Pure: the deployer runs the commands only where SELinux is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bundle.manifest_data import STATIC
from ..layout import Layout
from ..spec import ServiceSpec


@dataclass(frozen=True)
class FileContext:
    """One `semanage fcontext` rule: paths matching `pattern` get SELinux `type`."""

    pattern: str
    type: str
    top: str  # the directory restorecon relabels (recursively)
    why: str


def file_contexts(spec: ServiceSpec, layout: Layout) -> list[FileContext]:
    """The rules this spec needs; provided certificates are labelled by whoever placed them."""
    tls_dir = str(layout.tls_cert.parent)
    rules = [r for r in all_file_contexts(layout) if spec.tls.mode != "provided" or r.top != tls_dir]
    return [r for r in rules if spec.static.paths or r.type != "httpd_sys_content_t"]


def all_file_contexts(layout: Layout) -> list[FileContext]:
    """Every rule integrator may define for this service: what `uninstall --purge` removes."""
    tls_dir = layout.tls_cert.parent
    return [
        FileContext(
            f"{layout.runtime_dir}(/.*)?",
            "httpd_var_run_t",
            str(layout.runtime_dir),
            "nginx may connect to the app's unix socket",
        ),
        FileContext(
            f"{layout.venvs}/[^/]+/bin(/.*)?",
            "bin_t",
            str(layout.venvs),
            "systemd may execute gunicorn and python from the venvs the releases link to",
        ),
        FileContext(f"{tls_dir}(/.*)?", "cert_t", str(tls_dir), "nginx may read the generated certificate"),
        FileContext(
            f"{layout.releases}/[^/]+/{STATIC}(/.*)?",
            "httpd_sys_content_t",
            str(layout.releases),
            "nginx may read each release's [static] files",
        ),
    ]


def semanage_argv(rule: FileContext, *, exists: bool) -> list[str]:
    """`-a` adds a rule; `-m` changes one already defined (a re-deploy, or an admin's own)."""
    return ["semanage", "fcontext", "-m" if exists else "-a", "-t", rule.type, rule.pattern]


def restorecon_argv(rule: FileContext) -> list[str]:
    return ["restorecon", "-R", rule.top]


def script(spec: ServiceSpec, layout: Layout) -> list[str]:
    """The same steps as shell lines, for `integrator render --distro rhel` and the docs."""
    lines: list[str] = []
    for rule in file_contexts(spec, layout):
        lines.append(f"# {rule.why}")
        lines.append(" ".join(semanage_argv(rule, exists=False)[:-1]) + f" '{rule.pattern}'")
        lines.append(" ".join(restorecon_argv(rule)))
    return lines
