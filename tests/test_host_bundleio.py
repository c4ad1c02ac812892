"""A release unpacked under a hardened umask is still readable by the service user."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from integrator.errors import UsageError
from integrator.host import bundleio
from integrator.host.bundleio import BundleInfo, open_bundle, unpack_release
from integrator.host.system import System
from integrator.layout import Layout
from integrator.spec import parse_spec

SPEC = parse_spec({"service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}})


def test_release_dirs_are_0755_whatever_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "shop.pyz"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("payload/spec.json", "{}")
    monkeypatch.setattr("integrator.bundle.manifest.extract_verified", lambda path, dest: None)
    root = tmp_path / "root"
    layout = Layout.for_spec(SPEC, "debian")
    old = os.umask(0o077)
    try:
        dest = unpack_release(System(root), BundleInfo(bundle, "0" * 64, SPEC, None), layout, "r1")
    finally:
        os.umask(old)
    for path in (dest, dest / "app"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    assert stat.S_IMODE((dest / bundleio.KEPT_BUNDLE).stat().st_mode) == 0o644


def test_a_missing_bundle_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such bundle"):
        open_bundle(tmp_path / "absent.pyz")


def test_a_missing_bundle_is_bad_input_before_anything_is_copied(tmp_path: Path) -> None:
    from integrator.host.commands import deploy
    from integrator.host.transport import SshTarget

    # Refused before ssh is run: the destination does not even resolve.
    with pytest.raises(UsageError, match="no such bundle") as missing:
        deploy(tmp_path / "absent.pyz", SshTarget("root@host.invalid"))
    assert missing.value.exit_code == 2
