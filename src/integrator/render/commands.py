"""`integrator render`: show or write the files a deploy would write, from service.toml alone.

Build-side: it may write below `--out` (a staging tree, never a live host), atomically per
file, so a reader of that tree never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..layout import Layout
from ..result import Result
from ..spec import load_spec
from . import RenderedFile, render_all, selinux


def render(dir: Path, *, distro: str, out: Path | None, release_id: str) -> Result:
    """Render every file for `distro`; print them, or write them below `out`."""
    spec = load_spec(dir)
    layout = Layout.for_spec(spec, distro)
    files = render_all(spec, layout, release_id)
    labels = selinux.script(spec, layout) if layout.profile.selinux else []
    result = Result(data={"files": [_summary(f) for f in files], "selinux": labels})
    if out is None:
        for f in files:
            result.say(f"==> {f.path} ({f.mode:04o} {f.owner}:{f.group}) <==")
            result.lines += f.content.splitlines()
            result.say()
    else:
        for f in files:
            result.say(f"wrote {write_below(out, f)}")
    if labels:
        result.say("SELinux labels a deploy applies on this host family (where SELinux is enabled):")
        result.lines += ["  " + line for line in labels]
    return result


def _summary(f: RenderedFile) -> dict[str, str]:
    return {
        "path": str(f.path),
        "mode": f"{f.mode:04o}",
        "owner": f"{f.owner}:{f.group}",
        "sha256": hashlib.sha256(f.content.encode("utf-8")).hexdigest(),
    }


def write_below(root: Path, f: RenderedFile) -> Path:
    """Write `f` at root/<its absolute path>: a temporary file in the same directory, then
    os.replace(), so the target is always either the old or the new complete file."""
    relative = f.path.relative_to("/")
    if ".." in relative.parts:
        raise UsageError(f"{f.path}: refusing a path that leaves the output directory")
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(f.content)
        os.chmod(tmp, f.mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
