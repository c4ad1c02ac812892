"""The host's view of a bundle: verify it, read its spec, unpack a release (its venv: venvs.py).

All calls into `integrator.bundle` go through here, so the deploy flow does not depend on
how the bundle module names things. The bundle file is kept inside each release
(`bundle.pyz`): a rollback or a changed host Python can rebuild the venv without the build
machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BundleError, IntegratorError, UsageError
from ..layout import Layout
from ..spec import ServiceSpec
from .system import System

KEPT_BUNDLE = "bundle.pyz"


@dataclass(frozen=True)
class BundleInfo:
    """A verified bundle: where it is, its sha256 and the spec it carries."""

    path: Path
    sha256: str
    spec: ServiceSpec
    manifest: Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_bundle(path: Path) -> BundleInfo:
    """Verify every hash in the bundle before anything on the host is touched."""
    from ..bundle.manifest import verify_zip

    require_bundle_file(path)
    manifest = verify_zip(path)
    return BundleInfo(path, sha256_file(path), _spec_of(path, manifest), manifest)


def require_bundle_file(path: Path) -> None:
    """A missing bundle is bad input (exit 2), whether deployed here or copied to a host first."""
    if not path.is_file():
        raise UsageError(f"{path}: no such bundle")


@contextlib.contextmanager
def private_copy(bundle: Path) -> Iterator[tuple[Path, str]]:
    """Read `bundle` once, into a fresh directory only we can open; yield the copy and its sha256.

    Every check (signature, --sha256, the manifest) and the deploy then use only the copy, so a
    file swapped at `bundle` after its check is never the one deployed. Errors name `bundle`,
    the path the operator gave; the copy is removed afterwards."""
    require_bundle_file(bundle)
    tmp = tempfile.mkdtemp(prefix="integrator-bundle-")  # 0700, a new name: nobody else's
    copy = Path(tmp) / bundle.name
    try:
        digest = hashlib.sha256()
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(bundle, "rb") as src, os.fdopen(fd, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)
        try:
            yield copy, digest.hexdigest()
        except IntegratorError as exc:
            exc.message = exc.message.replace(str(copy), str(bundle))
            exc.args = (exc.message,)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def require_sha256(bundle: Path, digest: str, expected: str) -> None:
    """`deploy --sha256`: the bytes about to be deployed are the ones that were checked."""
    if digest != expected.lower():
        raise BundleError(
            f"{bundle}: sha256 {digest} is not the expected {expected}: "
            "refusing a bundle changed or swapped after it was checked"
        )


def _spec_of(path: Path, manifest: Any) -> ServiceSpec:
    from ..bundle.verify import bundle_spec

    return bundle_spec(path, manifest)


def unpack_release(system: System, info: BundleInfo, layout: Layout, release_id: str) -> Path:
    """Extract into releases/<id> (root-owned; the service only reads it) and keep the bundle."""
    from ..bundle.manifest import extract_verified

    dest = system.path(layout.release(release_id))
    dest.mkdir(parents=True)
    dest.chmod(0o755)  # explicit: mkdir's mode is cut by root's umask (027/077 on hardened hosts)
    extract_verified(info.path, dest)
    shutil.copyfile(info.path, dest / KEPT_BUNDLE)
    (dest / KEPT_BUNDLE).chmod(0o644)
    # The unit's working directory; the app itself is a wheel installed in the venv.
    app_dir = system.path(layout.app_dir(release_id))
    app_dir.mkdir(exist_ok=True)
    app_dir.chmod(0o755)
    return dest


def reopen_release_bundle(system: System, layout: Layout, release_id: str) -> BundleInfo:
    """The bundle kept in a release (to rebuild its venv on a changed Python)."""
    return open_bundle(system.path(layout.release(release_id) / KEPT_BUNDLE))


def release_spec(system: System, layout: Layout, release_id: str) -> ServiceSpec:
    """The spec a release was deployed with (rollback renders the files again from it)."""
    from ..bundle.manifest import SPEC_PATH

    path = system.path(layout.release(release_id) / SPEC_PATH)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"release {release_id} of {layout.name} has no spec (payload/spec.json)") from None
    except ValueError as exc:  # not UTF-8, not JSON
        raise BundleError(f"release {release_id} of {layout.name}: {SPEC_PATH} is not JSON: {exc}") from None
    return ServiceSpec.from_dict(data, source=f"release {release_id} of {layout.name}: {SPEC_PATH}")
