"""`integrator plan`: every file a deploy would write, compared with what a host has now.

The comparison is the deploy's own dry-run writer (`host.fs.FileWriter(dry_run=True)`) over
the same `render_all` output, so the plan shows the bytes a deploy writes. It reads below
`--root` (a mounted image, a copy of /etc, or / itself) and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .host.fs import FileWriter
from .host.system import System
from .layout import Layout
from .render import DEFAULT_NGINX_VERSION, render_all
from .result import Result
from .spec import ServiceSpec, load_spec

# The unit names the release it runs; a deploy picks the real id when it unpacks.
PLANNED_RELEASE = "next"


def plan_command(source: Path, *, distro: str, root: Path) -> Result:
    """Compare the rendered files for `source` (service dir or bundle) with those below `root`."""
    spec = _spec_of(source)
    layout = Layout.for_spec(spec, distro)
    system = System(root)
    version = _nginx_version(system, root)
    writer = FileWriter(system, dry_run=True)
    changes = writer.put_rendered(render_all(spec, layout, PLANNED_RELEASE, nginx_version=version))
    pending = [c for c in changes if c.changed]
    result = Result(
        data={
            "service": spec.name,
            "distro": distro,
            "root": str(root),
            "nginx_version": ".".join(map(str, version)),
            "release": PLANNED_RELEASE,
            "files": [{"path": str(c.path), "action": c.action, "diff": c.diff} for c in changes],
            "changed": bool(pending),
        }
    )
    result.say(
        f"plan for {spec.name} {spec.version} on a {distro} host below {root} "
        f"(nginx {result.data['nginx_version']}; "
        f"release id '{PLANNED_RELEASE}' stands for the one a deploy picks)"
    )
    for change in changes:
        result.say(f"  {change.action:9} {change.path}")
        result.lines.extend("    " + line for line in change.diff.splitlines())
    result.say(f"{len(pending)} of {len(changes)} files would change; nothing was written")
    return result


def _spec_of(source: Path) -> ServiceSpec:
    if source.is_file() and source.suffix == ".pyz":
        from .host.bundleio import open_bundle

        return open_bundle(source).spec
    if source.is_dir() or source.name == "service.toml":
        return load_spec(source)
    raise UsageError(f"{source}: not a service directory, service.toml or .pyz bundle")


def _nginx_version(system: System, root: Path) -> tuple[int, int, int]:
    """The host's nginx decides the http2 syntax; below another root we cannot run it."""
    if root == Path("/") and system.path("/usr/sbin/nginx").exists():
        from .host.facts import nginx_version

        return nginx_version(system)
    return DEFAULT_NGINX_VERSION
