"""integrator only removes what it created (issue 8, finding 8), on a host below a temporary root.

`Host` is a System whose users and groups live in dicts: `useradd`, `userdel` and `groupdel`
change them, `systemctl show` answers from `foreign_units`, every other program succeeds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from integrator.errors import HostError, UsageError
from integrator.host import ownership
from integrator.host.activate import HostContext
from integrator.host.apply import remove_first_deploy
from integrator.host.facts import HostFacts
from integrator.host.system import Account, System
from integrator.host.uninstall import uninstall_local
from integrator.host.users import ensure_user
from integrator.layout import STATE_ROOT, Layout, profile
from integrator.spec import parse_spec
from tests.host_fakes import FakeHost

SPEC = parse_spec({"service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}})
FACTS = HostFacts("debian", "Debian", "h", (1, 22, 1), "/usr/bin/python3", (3, 11, 2), "x86_64", 252, False)
LAYOUT = Layout("shop", profile("debian"))
B_SOCKET = LAYOUT.slot("b").socket_unit_path
OURS = "integrator service shop"


class Host(FakeHost):
    """The shared fake host, plus units that systemd loads from somewhere other than /etc."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.foreign_units: dict[str, str] = {}

    def _systemctl(self, args: list[str]) -> str:
        if args[0] == "show" and args[-1] in self.foreign_units:
            return f"LoadState=loaded\nFragmentPath={self.foreign_units[args[-1]]}\n"
        return super()._systemctl(args)


def _mk(system: System, path: PurePosixPath, content: str | None = None) -> Path:
    real = system.path(path)
    if content is None:
        real.mkdir(parents=True, exist_ok=True)
    else:
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(content)
    return real


def _deployed(system: Host) -> None:
    """What a deploy leaves, made the way a deploy makes it: reserve, create, claim."""
    _mk(system, LAYOUT.state_dir).chmod(0o700)
    ownership.reserve(system, LAYOUT)
    assert ensure_user(system, LAYOUT)
    _mk(system, LAYOUT.releases / "r1")
    _mk(system, LAYOUT.releases_record, '{"releases": []}\n')
    _mk(system, LAYOUT.app_state_dir / "db.sqlite", "app data\n")
    _mk(system, LAYOUT.credentials_dir / "api_key", "secret\n")
    for path in (LAYOUT.slot("a").service_unit_path, LAYOUT.slot("a").socket_unit_path, LAYOUT.nginx_site):
        _mk(system, path, "x\n")
    _mk(system, LAYOUT.runtime_dir)
    ownership.claim(system, LAYOUT)


def _all_paths() -> list[PurePosixPath]:
    return [*ownership.managed_dirs(LAYOUT), *ownership.managed_paths(LAYOUT), LAYOUT.state_dir]


# --- refusing someone else's names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "thing"),
    [
        (lambda h: h.add_user("shop", 1000, "Shop Keeper"), "user shop"),
        (lambda h: h.groups.update(shop=Account("shop", 1001, 1001)), "group shop"),
        (lambda h: _mk(h, LAYOUT.root / "data.txt", "mine\n"), "/opt/shop"),
        (lambda h: _mk(h, LAYOUT.app_state_dir), "/var/lib/shop"),
        (lambda h: _mk(h, LAYOUT.etc_dir), "/etc/integrator/shop"),
        (lambda h: _mk(h, LAYOUT.legacy.service_unit_path, "[Unit]\n"), "/etc/systemd/system/shop.service"),
        (lambda h: _mk(h, LAYOUT.legacy.socket_unit_path, "[Unit]\n"), "/etc/systemd/system/shop.socket"),
        (lambda h: _mk(h, B_SOCKET, "[Unit]\n"), "/etc/systemd/system/shop-b.socket"),
        (lambda h: _mk(h, LAYOUT.nginx_site, "server {}\n"), "/etc/nginx/conf.d/shop.conf"),
        (lambda h: _mk(h, LAYOUT.runtime_dir), "/run/shop"),  # e.g. Debian's /run/sshd
        (
            lambda h: h.foreign_units.update({"shop.service": "/lib/systemd/system/shop.service"}),
            "unit shop.service (/lib/systemd/system/shop.service)",
        ),
    ],
)
def test_a_name_in_use_is_refused_before_anything_is_written(tmp_path: Path, setup: Any, thing: str) -> None:
    host = Host(tmp_path)
    setup(host)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError) as err:
        ownership.require_ours(host, LAYOUT)
    assert err.value.exit_code == 2 and "\n" not in err.value.message
    assert err.value.message.startswith(f"{thing} exists and was not created by integrator: ")
    assert "choose another service name" in err.value.message
    with pytest.raises(UsageError):  # the deploy's own check under the lock, before any change
        ownership.reserve(host, LAYOUT)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert host.ran == [] or all(r.startswith("systemctl show") for r in host.ran)


def test_every_conflict_is_named_on_the_one_line(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.add_user("shop", 1000, "Shop Keeper")
    _mk(host, LAYOUT.root)
    with pytest.raises(UsageError, match=r"^user shop exists .* \(also: group shop, /opt/shop\)$"):
        ownership.require_ours(host, LAYOUT)


def test_a_forged_comment_alone_is_no_mark(tmp_path: Path) -> None:
    """A local user named like the service, even with integrator's GECOS comment, is refused."""
    host = Host(tmp_path)
    host.add_user("shop", 1000, OURS)
    with pytest.raises(UsageError, match=r"^user shop exists and was not created by integrator"):
        ownership.require_ours(host, LAYOUT)


# --- what a deploy records, and redeploys --------------------------------------------------------


def test_a_deploy_records_what_it_created_and_redeploys_pass(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    record = json.loads(host.path(LAYOUT.ownership_record).read_text())
    uid = host.users["shop"].id
    assert record["accounts"] == {"user": uid, "group": uid}
    st = os.lstat(host.path(LAYOUT.root))
    assert record["dirs"]["/opt/shop"] == [st.st_dev, st.st_ino]
    assert all(record["dirs"][str(p)] for p in ownership.managed_dirs(LAYOUT))  # every id filled in
    assert set(record["paths"]) == {str(p) for p in ownership.managed_paths(LAYOUT)}
    assert oct(host.path(LAYOUT.ownership_record).stat().st_mode & 0o777) == "0o600"
    ownership.require_ours(host, LAYOUT)  # the next deploy of the same service goes on


def test_a_directory_replaced_since_is_not_ours(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    real = host.path(LAYOUT.root)
    real.rename(tmp_path / "moved")
    _mk(host, LAYOUT.root / "theirs.txt", "not integrator's\n")
    with pytest.raises(UsageError, match=r"^/opt/shop exists and was not created by integrator"):
        ownership.require_ours(host, LAYOUT)
    (real / "theirs.txt").unlink()
    real.rmdir()
    real.symlink_to(tmp_path / "moved")  # a symlink to the old directory is not the directory
    with pytest.raises(UsageError, match=r"^/opt/shop exists"):
        ownership.require_ours(host, LAYOUT)


def test_a_state_directory_recreated_by_systemd_for_our_user_stays_ours(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    user = host.users["shop"]
    host.users["shop"] = Account("shop", os.getuid(), user.gid, user.comment)  # lstat sees our uid
    record = json.loads(host.path(LAYOUT.ownership_record).read_text())
    record["accounts"]["user"] = os.getuid()
    host.path(LAYOUT.ownership_record).write_text(json.dumps(record))
    state = host.path(LAYOUT.app_state_dir)
    (state / "db.sqlite").unlink()
    state.rmdir()
    state.mkdir()  # StateDirectory= made it again: new inode, owned by the service's user
    ownership.require_ours(host, LAYOUT)


# --- uninstall -------------------------------------------------------------------------------------


def test_uninstall_purge_removes_everything_it_created(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    result = uninstall_local(host, "shop", purge=True)
    assert result.exit_code == 0 and result.data["kept"] == []
    for path in [*_all_paths(), STATE_ROOT, LAYOUT.etc_dir.parent]:  # the empty parents too: no trace
        assert not os.path.lexists(host.path(path)), path
    assert host.users == {} and host.groups == {}


def test_uninstall_keeps_data_and_its_record_and_a_redeploy_takes_them_back(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    uninstall_local(host, "shop", purge=False)
    assert (host.path(LAYOUT.app_state_dir) / "db.sqlite").read_text() == "app data\n"
    assert (host.path(LAYOUT.credentials_dir) / "api_key").is_file()
    assert not host.path(LAYOUT.root).exists() and "shop" not in host.users
    record = json.loads(host.path(LAYOUT.ownership_record).read_text())
    assert set(record["dirs"]) == {"/var/lib/shop", "/etc/integrator/shop"} and record["accounts"] == {}
    ownership.require_ours(host, LAYOUT)  # deploying shop again is fine: the data is its own
    result = uninstall_local(host, "shop", purge=True)
    assert "/var/lib/shop" in result.data["removed"] and not host.path(LAYOUT.state_dir).exists()


def test_uninstall_purge_keeps_what_is_not_the_directory_it_created(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    state = host.path(LAYOUT.app_state_dir)
    state.rename(tmp_path / "old-state")
    _mk(host, LAYOUT.app_state_dir / "theirs.db", "someone else's data\n")
    result = uninstall_local(host, "shop", purge=True)
    assert (state / "theirs.db").read_text() == "someone else's data\n"
    assert result.data["kept"] == ["/var/lib/shop"]
    assert "  kept /var/lib/shop: not created by integrator" in result.lines
    assert not host.path(LAYOUT.root).exists() and not host.path(LAYOUT.etc_dir).exists()


def test_uninstall_of_an_older_install_keeps_a_reused_system_account(tmp_path: Path) -> None:
    """Deployed before the record existed (releases.json only), under a name whose user was
    someone else's: the layout is adopted, the user is not, and survives."""
    host = Host(tmp_path)
    host.add_user("shop", 1000, "Shop Keeper")
    _mk(host, LAYOUT.state_dir).chmod(0o700)
    _mk(host, LAYOUT.releases_record, '{"releases": []}\n')
    _mk(host, LAYOUT.releases / "r1")
    _mk(host, LAYOUT.slot("a").service_unit_path, "[Service]\n")
    result = uninstall_local(host, "shop", purge=True)
    assert host.users["shop"].comment == "Shop Keeper" and "shop" in host.groups
    assert not any(r.startswith(("userdel", "groupdel")) for r in host.ran)
    assert "  kept user shop: not created by integrator" in result.lines
    assert not host.path(LAYOUT.root).exists() and not host.path(LAYOUT.slot("a").service_unit_path).exists()


def test_an_older_install_is_adopted_by_its_next_deploy(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.add_user("shop", 990, OURS)
    _mk(host, LAYOUT.state_dir).chmod(0o700)
    _mk(host, LAYOUT.releases_record, '{"releases": []}\n')
    _mk(host, LAYOUT.releases / "r1")
    _mk(host, LAYOUT.app_state_dir)
    ownership.reserve(host, LAYOUT)
    record = json.loads(host.path(LAYOUT.ownership_record).read_text())
    assert record["adopted"] is True and record["accounts"] == {"user": 990, "group": 990}
    assert record["dirs"]["/opt/shop"] and record["dirs"]["/etc/integrator/shop"] is None


def test_uninstall_of_a_name_integrator_never_deployed_touches_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.add_user("shop", 1000, "Shop Keeper")
    _mk(host, LAYOUT.root / "data.txt", "mine\n")
    with pytest.raises(HostError, match=r"^shop is not installed on this host$"):
        uninstall_local(host, "shop", purge=True)
    assert host.path(LAYOUT.root / "data.txt").is_file() and "shop" in host.users and host.ran == []


# --- a failed first deploy -------------------------------------------------------------------------


def test_a_failed_first_deploy_removes_only_what_it_created(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.add_user("shop", 1000, "Shop Keeper")
    _mk(host, LAYOUT.root / "data.txt", "mine\n")  # no record: none of this is integrator's
    remove_first_deploy(HostContext(host, FACTS, SPEC, LAYOUT), created_user=True)
    assert host.path(LAYOUT.root / "data.txt").read_text() == "mine\n"
    assert "shop" in host.users and not any(r.startswith("userdel") for r in host.ran)


def test_a_failed_first_deploy_after_uninstall_keeps_the_kept_data(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    uninstall_local(host, "shop", purge=False)
    ownership.reserve(host, LAYOUT)  # the next (first) deploy
    assert ensure_user(host, LAYOUT)
    _mk(host, LAYOUT.releases / "r2")
    _mk(host, LAYOUT.runtime_dir)
    remove_first_deploy(HostContext(host, FACTS, SPEC, LAYOUT), created_user=True)
    assert not host.path(LAYOUT.root).exists() and not host.path(LAYOUT.runtime_dir).exists()
    assert "shop" not in host.users
    assert (host.path(LAYOUT.app_state_dir) / "db.sqlite").read_text() == "app data\n"
    ownership.require_ours(host, LAYOUT)  # still marked as integrator's: a deploy may use it


# --- the record itself -----------------------------------------------------------------------------


def test_a_record_others_could_write_is_not_believed(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    record = host.path(LAYOUT.ownership_record)
    record.chmod(0o666)
    with pytest.raises(HostError, match=r"owned.json is not root-only \(owner uid \d+, mode 666\)"):
        ownership.require_ours(host, LAYOUT)
    record.chmod(0o600)
    host.path(LAYOUT.state_dir).chmod(0o777)
    with pytest.raises(HostError, match="/var/lib/integrator/shop is not root-only"):
        uninstall_local(host, "shop", purge=True)
    host.path(LAYOUT.state_dir).chmod(0o700)
    record.rename(tmp_path / "elsewhere.json")
    record.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(HostError, match="a symlink"):
        ownership.require_ours(host, LAYOUT)
    assert host.path(LAYOUT.root).is_dir() and "shop" in host.users  # nothing was removed


def test_a_record_of_another_service_is_refused(tmp_path: Path) -> None:
    host = Host(tmp_path)
    _deployed(host)
    record = host.path(LAYOUT.ownership_record)
    record.write_text(record.read_text().replace('"service": "shop"', '"service": "blog"'))
    with pytest.raises(HostError, match="is the record of 'blog', not 'shop'"):
        ownership.require_ours(host, LAYOUT)


def test_an_older_install_with_a_reused_account_keeps_that_accounts_data(tmp_path: Path) -> None:
    """An older integrator reused user shop (someone else's); /var/lib/shop owned by that user
    was theirs too: the deploy refuses both, a purge keeps both."""
    host = Host(tmp_path)
    host.add_user("shop", os.getuid(), "Shop Keeper")  # lstat sees our uid as the owner
    _mk(host, LAYOUT.state_dir).chmod(0o700)
    _mk(host, LAYOUT.releases_record, '{"releases": []}\n')
    _mk(host, LAYOUT.releases / "r1")
    _mk(host, LAYOUT.app_state_dir / "base", "their data\n")
    with pytest.raises(UsageError, match=r"^user shop exists .*\(also: group shop, /var/lib/shop\)$"):
        ownership.require_ours(host, LAYOUT)
    result = uninstall_local(host, "shop", purge=True)
    assert host.path(LAYOUT.app_state_dir / "base").read_text() == "their data\n"
    assert result.data["kept"] == ["user shop", "group shop", "/var/lib/shop"]
    assert not host.path(LAYOUT.root).exists()


def test_an_older_install_uninstalled_without_purge_keeps_its_data_adoptable(tmp_path: Path) -> None:
    """Its user is gone (uninstall removed it), its data and release records stayed."""
    host = Host(tmp_path)
    _mk(host, LAYOUT.state_dir).chmod(0o700)
    _mk(host, LAYOUT.releases_record, '{"releases": []}\n')
    _mk(host, LAYOUT.app_state_dir / "db.sqlite", "app data\n")
    ownership.require_ours(host, LAYOUT)


def test_a_first_deploy_killed_part_way_does_not_block_the_next(tmp_path: Path) -> None:
    """Killed after useradd and mkdir, before claiming: the reservations let the next deploy go
    on, and if that one fails too it removes what the dead one created."""
    host = Host(tmp_path)
    _mk(host, LAYOUT.state_dir).chmod(0o700)
    ownership.reserve(host, LAYOUT)
    assert ensure_user(host, LAYOUT)
    _mk(host, LAYOUT.releases / "r1")  # ... and then SIGKILL: no claim
    ownership.require_ours(host, LAYOUT)
    ownership.reserve(host, LAYOUT)  # the next deploy
    assert not ensure_user(host, LAYOUT)  # the dead deploy made it
    remove_first_deploy(HostContext(host, FACTS, SPEC, LAYOUT), created_user=False)
    assert not host.path(LAYOUT.root).exists() and not host.path(LAYOUT.state_dir).exists()
    assert host.users == {} and host.groups == {}
