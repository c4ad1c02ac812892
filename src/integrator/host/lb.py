"""A fleet's load balancer on this host (HOST-SIDE): the bundle's `lb` and `probe` verbs.

`lb` writes the service's site with the app hosts as its upstream (render/lb.py, through the
same `render.nginx_files` a deploy uses), its certificate and the shared snippets; then, when
anything changed, `nginx -t` and a reload that waits for the old workers to finish their
requests (the drain of a host marked `down`), and a health check through this LB. Nothing
changed: nothing reloaded. `probe` asks one app host directly, as this LB reaches it.
The fleet playbooks (integrator.fleet) call both; nothing else here knows about Ansible.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import CheckFailed, UsageError
from ..layout import Layout
from ..render import nginx_files
from ..render.lb import Backends, check_backend
from ..result import Result
from .bundleio import open_bundle
from .facts import current_release, host_distro, nginx_version, probe_host
from .fs import FileWriter
from .health import probe_once, wait_healthy
from .system import System, require_root
from .tls import ensure_tls, tls_files
from .units import NGINX, is_active, nginx_check, nginx_reload


def lb_sync(
    system: System, bundle: Path, backends: Backends, drain_s: float = 30.0, dry_run: bool = False
) -> Result:
    """Make this host's LB site route to `backends` (those `down` drained); reload only on change."""
    require_root(system, "lb")
    info = open_bundle(bundle)
    spec = info.spec
    layout = Layout.for_spec(spec, host_distro(system))
    if current_release(system, layout.current) is not None:
        raise UsageError(f"{spec.name} itself runs on this host: a load balancer must be another host")
    writer = FileWriter(system, dry_run=dry_run)
    changes = ensure_tls(system, writer, spec, layout, probe_host(system).hostname)
    changes += writer.put_rendered(nginx_files(spec, layout, nginx_version(system), backends))
    changed = [c for c in changes if c.changed]
    data: dict[str, object] = {
        "service": spec.name,
        "backends": list(backends.hosts),
        "down": sorted(backends.down),
        "changed": bool(changed),
        "files": [{"path": str(c.path), "action": c.action} for c in changed],
    }
    result = Result(data=data)
    for c in changed:
        result.say(f"  {c.action:7} {c.path}")
    if dry_run:
        return result.say(f"{spec.name} LB: {len(changed)} change(s) pending (nothing written)")
    if changed or not is_active(system, NGINX):
        try:
            nginx_check(system)
        except CheckFailed:
            writer.undo()
            raise
        started = time.monotonic()
        nginx_reload(system, timeout=drain_s)  # returns once the old workers are gone: drained
        data["drain_s"] = round(time.monotonic() - started, 2)
    up = [h for h in backends.hosts if h not in backends.down]
    if up:
        probe = wait_healthy(spec, tls_files(spec, layout).verify_against, deadline_s=20)
        data["health"] = probe.detail
        if not probe.ok:
            result.exit_code = 1
            return result.say(f"{spec.name} LB: not healthy through this LB: {probe.detail}")
    down = f", drained: {', '.join(sorted(backends.down))}" if backends.down else ""
    return result.say(f"{spec.name} LB: {len(up)} of {len(backends.hosts)} app host(s) in the pool{down}")


def lb_probe(system: System, bundle: Path, address: str, deadline_s: float = 20.0) -> Result:
    """GET the health path of one app host directly (SNI and Host: the service's name)."""
    info = open_bundle(bundle)
    spec = info.spec
    layout = Layout.for_spec(spec, host_distro(system))
    host = check_backend(address)
    cert = tls_files(spec, layout).verify_against
    end = time.monotonic() + deadline_s
    probe = probe_once(spec, cert, address=host)
    while not probe.ok and time.monotonic() < end:
        time.sleep(0.5)
        probe = probe_once(spec, cert, address=host)
    result = Result(data={"service": spec.name, "backend": host, "healthy": probe.ok, "detail": probe.detail})
    result.exit_code = 0 if probe.ok else 1
    return result.say(f"{host}: {'healthy' if probe.ok else 'NOT healthy'} ({probe.detail})")
