"""integrator only ever removes what it created (issue 8, finding 8), on one sandbox host.

Names that belong to someone else (a user made with `useradd`, an admin's `/opt/NAME` or
`/var/lib/NAME`) are refused before anything is written, and stay; a normal deploy followed by
`uninstall --purge` still leaves no trace. Each test puts the host back as it found it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from integrator.errors import IntegratorError
from integrator.host.deploy_options import DeployOptions
from integrator.sandbox import Sandbox
from integrator.targets import commands
from integrator.targets.transport import SandboxTarget
from tests.sandbox_fixture import MakeSandbox
from tests.test_deploy_e2e import _build, _new_service, get

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

# What a deploy could touch, without what systemd, journald or nginx change by themselves.
LISTING = (
    "find /opt /etc/systemd/system /etc/nginx /etc/integrator /var/lib/integrator 2>/dev/null | sort; "
    "ls -1 /var/lib /run /etc; getent passwd; getent group"
)


@dataclass(frozen=True)
class Bundles:
    shopx: Path  # a healthy service
    lonely: Path  # a service whose app raises at import: its first deploy fails


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    root = tmp_path_factory.mktemp("owner-bundles")
    shopx = _build(_new_service("shopx", root / "shopx"), root / "dist" / "shopx")
    lonely = _new_service("lonely", root / "lonely")
    init = lonely / "src/lonely/__init__.py"
    init.write_text(init.read_text() + '\nraise RuntimeError("never worked")\n')
    # broken on purpose: --no-preflight, or the build itself would refuse it before any host sees it
    return Bundles(shopx, _build(lonely, root / "dist" / "lonely", preflight=False))


@pytest.fixture(scope="module")
def host(make_module_sandbox: MakeSandbox) -> Sandbox:
    return make_module_sandbox()


def sh(box: Sandbox, script: str) -> subprocess.CompletedProcess[bytes]:
    return box.exec(["sh", "-c", script], check=False)


def listing(box: Sandbox) -> str:
    return sh(box, LISTING).stdout.decode()


def refused(bundle: Path, box: Sandbox, match: str, plan: bool = False) -> None:
    with pytest.raises(IntegratorError, match=match) as err:
        commands.deploy(DeployOptions(bundle, plan_only=plan), SandboxTarget(box.name))
    assert err.value.exit_code == 2 and "\n" not in err.value.message


def test_a_service_named_like_an_existing_user_is_refused(host: Sandbox, bundles: Bundles) -> None:
    assert sh(host, "useradd --comment 'Shop clerk' shopx").returncode == 0
    try:
        before = listing(host)
        why = r"^user shopx exists and was not created by integrator: choose another service name"
        refused(bundles.shopx, host, why, plan=True)
        refused(bundles.shopx, host, why)
        assert listing(host) == before
        with pytest.raises(IntegratorError, match="shopx is not installed on this host"):
            commands.uninstall("shopx", SandboxTarget(host.name), purge=True)
        assert sh(host, "getent passwd shopx").stdout.decode().split(":")[4] == "Shop clerk"
        assert listing(host) == before
    finally:
        sh(host, "userdel shopx")


def test_a_failing_first_deploy_never_deletes_an_existing_opt_dir(host: Sandbox, bundles: Bundles) -> None:
    assert sh(host, "mkdir -p /opt/lonely && echo precious > /opt/lonely/data.txt").returncode == 0
    try:
        before = listing(host)
        refused(bundles.lonely, host, r"^/opt/lonely exists and was not created by integrator: move it away")
        assert sh(host, "cat /opt/lonely/data.txt").stdout == b"precious\n"
        assert listing(host) == before
    finally:
        sh(host, "rm -rf /opt/lonely")


def test_existing_app_data_is_never_taken_over_or_purged(host: Sandbox, bundles: Bundles) -> None:
    data = "mkdir -p /var/lib/shopx; echo precious > /var/lib/shopx/data.db; chown -R nobody /var/lib/shopx"
    assert sh(host, data).returncode == 0
    try:
        before = listing(host)
        refused(bundles.shopx, host, r"^/var/lib/shopx exists and was not created by integrator")
        with pytest.raises(IntegratorError, match="shopx is not installed on this host"):
            commands.uninstall("shopx", SandboxTarget(host.name), purge=True)
        kept = sh(host, "stat -c %U /var/lib/shopx; cat /var/lib/shopx/data.db").stdout
        assert kept == b"nobody\nprecious\n"  # not chowned to a service user, not purged
        assert listing(host) == before
    finally:
        sh(host, "rm -rf /var/lib/shopx")


def test_deploy_then_purge_leaves_no_trace(host: Sandbox, bundles: Bundles) -> None:
    target = SandboxTarget(host.name)
    before = listing(host)
    result = commands.deploy(DeployOptions(bundles.shopx), target)
    assert result.exit_code == 0, result.lines
    assert get(host.address, "/healthz", host="shopx")[0] == 200
    owned = sh(host, "stat -c '%U %a' /var/lib/integrator/shopx /var/lib/integrator/shopx/owned.json")
    assert owned.stdout.decode().split("\n")[:2] == ["root 700", "root 600"]
    assert sh(host, "getent passwd shopx").stdout.decode().split(":")[4] == "integrator service shopx"
    result = commands.uninstall("shopx", target, purge=True)
    assert result.exit_code == 0 and result.data["kept"] == [], result.lines
    assert listing(host) == before


def test_a_service_deployed_before_the_record_existed_keeps_working(host: Sandbox, bundles: Bundles) -> None:
    """An install by an older integrator has release records but no owned.json: it is adopted
    (its user carries integrator's comment), redeploys, and uninstalls without a trace."""
    target = SandboxTarget(host.name)
    before = listing(host)
    assert commands.deploy(DeployOptions(bundles.shopx), target).exit_code == 0
    assert sh(host, "rm /var/lib/integrator/shopx/owned.json").returncode == 0
    again = commands.deploy(DeployOptions(bundles.shopx), target)
    assert again.exit_code == 0 and again.data["changed"] is False, again.lines
    result = commands.uninstall("shopx", target, purge=True)
    assert result.exit_code == 0 and result.data["kept"] == [], result.lines
    assert "user shopx" in result.data["removed"]
    assert listing(host) == before
