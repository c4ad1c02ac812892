"""A release unpacked under a hardened umask is still readable by the service user."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from integrator.errors import BundleError, UsageError
from integrator.host import bundleio
from integrator.host.bundleio import BundleInfo, open_bundle, unpack_release
from integrator.host.deploy_options import DeployOptions
from integrator.host.system import System
from integrator.layout import Layout
from integrator.result import Result
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
    from integrator.targets.commands import deploy
    from integrator.targets.transport import SshTarget

    # Refused before ssh is run: the destination does not even resolve.
    with pytest.raises(UsageError, match="no such bundle") as missing:
        deploy(DeployOptions(tmp_path / "absent.pyz"), SshTarget("root@host.invalid"))
    assert missing.value.exit_code == 2


# --- the signature is bound to the bytes deployed (issue 8, finding 4) -----------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def swap_after_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, str]:
    """A signed bundle at the operator's path, replaced by an unsigned one as soon as its signature
    has been checked: the attacker's window in `deploy --allowed-signers`. (path, signers, signed sha)"""
    from integrator.bundle import verify as verify_module
    from tests.test_bundle_verify import _keypair, make_bundle

    key, signers = _keypair(tmp_path, "release")
    given = make_bundle(tmp_path / "shop-1.2.0.pyz", signing_key=key)
    signed = _sha256(given)
    unsigned = make_bundle(tmp_path / "unsigned.pyz")
    real = verify_module.verify_bundle

    def check_then_swap(bundle: Path, allowed_signers: Path | None = None) -> Result:
        result = real(bundle, allowed_signers=allowed_signers)
        if unsigned.exists():  # once, after the first check
            os.replace(unsigned, given)
        return result

    monkeypatch.setattr(verify_module, "verify_bundle", check_then_swap)
    return given, signers, signed


def test_a_bundle_swapped_after_its_signature_check_is_not_what_is_deployed_here(
    swap_after_check: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrator.host import deploy as host_deploy
    from integrator.targets import commands
    from integrator.targets.transport import LocalTarget

    given, signers, signed = swap_after_check
    opened: list[str] = []

    def deploy_local(
        system: System, bundle: Path, plan_only: bool, secrets: object, release_id: str | None = None
    ) -> Result:
        opened.append(open_bundle(bundle).sha256)  # what the deploy itself opens and verifies
        return Result()

    monkeypatch.setattr(host_deploy, "deploy_local", deploy_local)
    commands.deploy(DeployOptions(given, allowed_signers=signers), LocalTarget())
    assert _sha256(given) != signed  # the swap happened ...
    assert opened == [signed]  # ... and the deploy used the bytes whose signature was checked


def test_a_bundle_swapped_after_its_own_deploy_checked_it_is_not_deployed(
    swap_after_check: tuple[Path, Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`sudo python3 BUNDLE.pyz deploy --allowed-signers FILE`: the same binding."""
    from integrator.host import deploy as host_deploy
    from integrator.host import pyzmain

    given, signers, signed = swap_after_check
    opened: list[str] = []

    def deploy_local(
        system: System, bundle: Path, plan_only: bool, secrets: object, release_id: str | None = None
    ) -> Result:
        opened.append(open_bundle(bundle).sha256)
        return Result()

    monkeypatch.setattr(host_deploy, "deploy_local", deploy_local)
    assert pyzmain.main(["deploy", "--allowed-signers", str(signers)], bundle=given) == 1
    assert _sha256(given) != signed and opened == []  # swapped, and refused rather than deployed
    err = capsys.readouterr().err
    assert err.endswith(f"{given}: not signed, but --allowed-signers requires a signature\n")


def test_a_bundle_swapped_after_its_signature_check_is_not_what_goes_to_a_host(
    swap_after_check: tuple[Path, Path, str],
) -> None:
    from integrator.targets import commands
    from integrator.targets.remote import Arg, Upload, stdin_parts
    from integrator.targets.transport import RemoteTarget

    given, signers, signed = swap_after_check
    sent: list[tuple[list[Arg], str]] = []

    class Recorder(RemoteTarget):
        def describe(self) -> str:
            return "recorder"

        def invoke(
            self, args: Sequence[Arg], uploads: Sequence[Upload] = (), *, timeout: float = 900
        ) -> Result:
            streamed = b"".join(stdin_parts(None, uploads))  # the bytes the host would receive
            sent.append((list(args), hashlib.sha256(streamed).hexdigest()))
            return Result()

    commands.deploy(DeployOptions(given, allowed_signers=signers), Recorder())
    assert _sha256(given) != signed
    # the host gets the checked bytes, and the sha256 to refuse anything else with
    assert sent == [(["deploy", ("", given.name), "--sha256", signed], signed)]


def test_the_host_refuses_a_bundle_that_is_not_the_one_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from integrator.cli import main
    from integrator.targets import commands
    from integrator.targets.transport import LocalTarget
    from tests.test_bundle_verify import _keypair, make_bundle

    bundle = make_bundle(tmp_path / "shop-1.2.0.pyz")
    other = "0" * 64
    assert main(["deploy", str(bundle), "--local", "--plan", "--sha256", other]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"integrator: error: {bundle}: sha256 {_sha256(bundle)} is not the expected {other}: "
        "refusing a bundle changed or swapped after it was checked\n"
    )
    assert main(["deploy", str(bundle), "--local", "--plan", "--sha256", "abc"]) == 2
    assert "--sha256 'abc': expected 64 hex digits" in capsys.readouterr().err
    # refusals name the operator's path, not the private copy that was checked
    _, signers = _keypair(tmp_path, "release")
    with pytest.raises(BundleError) as unsigned:
        commands.deploy(DeployOptions(bundle, allowed_signers=signers), LocalTarget())
    assert unsigned.value.message == f"{bundle}: not signed, but --allowed-signers requires a signature"
    assert str(unsigned.value) == unsigned.value.message


def test_a_release_spec_is_validated_whole_and_bad_json_is_one_line(tmp_path: Path) -> None:
    """rollback renders from the release's own spec.json: checked like service.toml, no traceback."""
    from integrator.errors import BundleError, SpecError

    layout = Layout.for_spec(SPEC, "debian")
    spec_json = tmp_path / "opt/shop/releases/r1/payload/spec.json"
    spec_json.parent.mkdir(parents=True)
    spec_json.write_bytes(b"\xff not json")
    with pytest.raises(BundleError, match=r"payload/spec\.json is not JSON"):
        bundleio.release_spec(System(tmp_path), layout, "r1")
    spec_json.write_text(
        json.dumps({**SPEC.to_dict(), "service": {**SPEC.to_dict()["service"], "entry": "shop:app\n"}})
    )
    with pytest.raises(SpecError, match=r"release r1 of shop: payload/spec.json: \[service\] entry"):
        bundleio.release_spec(System(tmp_path), layout, "r1")
