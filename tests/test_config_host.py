"""`config set`, `scale` and `secret` applied on a FakeHost (tests/host_fakes.py): the plan's
files written, the restart through the deploy's activation, the attempt recorded; nothing to do
restarts nothing; a failed health check puts the previous drop-in back byte for byte and exits 1
naming the check; a secret's input file is refused when it is a symlink or writable by others.
The real thing on a sandbox host: tests/test_config_e2e.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from integrator.errors import UsageError
from integrator.host import verbs
from integrator.host.config_facts import config_record, history_record, read_secret_input
from integrator.host.facts import UNIT_PROPERTIES
from integrator.host.status import status_local
from integrator.render.dropin import dropin_paths

from .host_fakes import FakeHost, deployed, make_host

# A deploy starts slot a; a config change restarts drain-first: the release starts in slot b.
RESTART = "systemctl restart shop-b.service"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    monkeypatch.setenv("SUDO_USER", "alice")
    return make_host(tmp_path / "root", monkeypatch)


def test_set_writes_the_dropin_restarts_and_records(host: FakeHost) -> None:
    layout = deployed(host).layout
    host.ran.clear()
    result = verbs.config(host, ["set", "shop", "GREETING=hi there", "API_TOKEN=t0p"])
    assert result.exit_code == 0, result.lines
    dropin = host.path(dropin_paths(layout)[0]).read_text()
    assert 'Environment="GREETING=hi there"' in dropin and "Environment=API_TOKEN=t0p" in dropin
    assert "by alice" in dropin
    assert RESTART in host.ran and "nginx -t -q" in host.ran  # the deploy's activation, health-gated
    assert "t0p" not in "\n".join(result.lines) and "set API_TOKEN=(hidden)" in result.lines[0]
    history = json.loads(host.path(history_record(layout)).read_text())
    assert [(h["by"], h["verb"], h["outcome"]) for h in history] == [("alice", "config set", "ok")]
    assert "t0p" not in json.dumps(history)
    assert oct(host.path(config_record(layout)).stat().st_mode & 0o777) == "0o600"
    shown = verbs.config(host, ["shop"])
    assert (
        "  GREETING=hi there  (from host)" in shown.lines
        and "  API_TOKEN=(hidden)  (from host)" in shown.lines
    )
    # the same again: nothing to change, nothing restarted
    host.ran.clear()
    again = verbs.config(host, ["set", "shop", "GREETING=hi there"])
    assert again.data["changed"] is False and not [r for r in host.ran if "restart" in r]


def test_a_failed_health_check_puts_the_previous_dropin_back_exactly(host: FakeHost) -> None:
    layout = deployed(host).layout
    assert verbs.scale(host, "shop", ["workers=3"]).exit_code == 0
    path = host.path(dropin_paths(layout)[0])
    before, record = path.read_bytes(), host.path(config_record(layout)).read_bytes()

    def breaks() -> None:  # slot a's app fails its health check; once it is stopped, b serves again
        host.serving = False
        host.on("systemctl disable --now --quiet shop-a.service", lambda: setattr(host, "serving", True))

    host.on("systemctl restart shop-a.service", breaks)  # scale went to b, this change to a
    result = verbs.config(host, ["set", "shop", "GREETING=broken"])
    assert result.exit_code == 1
    assert result.lines[0].startswith(
        "config set of shop failed: health check /healthz on /run/shop/gunicorn-a.sock"
    )
    assert "serves again" in result.lines[1] and result.data["restored"] is True
    assert path.read_bytes() == before and host.path(config_record(layout)).read_bytes() == record
    assert RESTART in host.ran and "systemctl restart shop-a.service" in host.ran  # scale, the failed change
    outcomes = [h["outcome"] for h in json.loads(host.path(history_record(layout)).read_text())]
    assert outcomes == ["ok", "failed"]


def test_ctrl_c_after_the_switch_links_back_and_exits_as_a_deploy_does(host: FakeHost) -> None:
    layout = deployed(host).layout
    assert verbs.scale(host, "shop", ["workers=3"]).exit_code == 0  # slot b serves now
    path = host.path(dropin_paths(layout)[0])
    before = path.read_bytes()

    def ctrl_c() -> None:  # the health check through nginx, after the link moved to slot a
        raise KeyboardInterrupt

    show = f"systemctl show -p {','.join(UNIT_PROPERTIES)} shop-a.service"
    host.on(show, ctrl_c)  # is slot a active: asked once its health check passed through nginx
    result = verbs.config(host, ["set", "shop", "GREETING=later"])
    assert result.exit_code == 130, result.lines  # 128 + SIGINT, like deploy and rollback
    assert result.lines[0].startswith("config set of shop failed: interrupted by SIGINT at step health")
    assert path.read_bytes() == before and result.data["restored"] is True
    assert os.readlink(host.path(layout.upstream_link)) == str(layout.slot("b").socket_path)
    assert "systemctl disable --now --quiet shop-a.service shop-a.socket" in host.ran


def test_unset_of_the_last_override_removes_the_dropin_and_status_shows_it(host: FakeHost) -> None:
    layout = deployed(host).layout
    verbs.config(host, ["set", "shop", "COLOR=blue"])
    assert "host config (kept across deploys): env COLOR" in "\n".join(status_local(host, "shop").lines)
    assert verbs.config(host, ["unset", "shop", "COLOR"]).exit_code == 0
    assert not host.path(dropin_paths(layout)[0]).exists()
    assert "host config" not in "\n".join(status_local(host, "shop").lines)


def test_secret_set_replaces_the_credential_and_rm_takes_a_host_one_away(
    host: FakeHost, tmp_path: Path
) -> None:
    layout = deployed(host).layout
    new = tmp_path / "new-key"
    new.write_text("rotated\n")
    new.chmod(0o600)
    assert verbs.secret(host, ["set", "shop", "api_key"], new).exit_code == 0
    assert host.path(layout.credentials_dir / "api_key").read_text() == "rotated\n"
    assert not host.path(dropin_paths(layout)[0]).exists()  # the release loads it already
    assert verbs.secret(host, ["set", "shop", "extra"], new).exit_code == 0
    assert "LoadCredential=extra:" in host.path(dropin_paths(layout)[0]).read_text()
    assert verbs.secret(host, ["rm", "shop", "extra"]).exit_code == 0
    assert not host.path(layout.credentials_dir / "extra").exists()
    with pytest.raises(UsageError, match=r"release .* needs it"):
        verbs.secret(host, ["rm", "shop", "api_key"])


def test_a_secret_input_is_refused_when_others_could_have_written_it(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"x")
    good.chmod(0o600)
    assert read_secret_input(good) == b"x"
    link = tmp_path / "link"
    os.symlink(good, link)
    with pytest.raises(UsageError, match="a symlink"):
        read_secret_input(link)
    good.chmod(0o602)
    with pytest.raises(UsageError, match="writable by group or others"):
        read_secret_input(good)
    good.chmod(0o600)
    good.write_bytes(b"")
    with pytest.raises(UsageError, match="1 byte to 1024 KiB"):
        read_secret_input(good)
    with pytest.raises(UsageError, match="not a regular file"):
        read_secret_input(tmp_path)


def test_uninstall_takes_the_dropin_and_the_recorded_values_along(host: FakeHost) -> None:
    from integrator.host.uninstall import uninstall_local

    layout = deployed(host).layout
    assert verbs.scale(host, "shop", ["workers=3"]).exit_code == 0
    result = uninstall_local(host, "shop", purge=False)
    assert str(dropin_paths(layout)[0]) in result.data["removed"]
    assert not host.path(dropin_paths(layout)[0].parent).exists()
    assert not host.path(config_record(layout)).exists() and host.path(history_record(layout)).exists()


def test_a_change_killed_before_its_restart_is_restarted_by_the_next(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrator.host import config

    layout = deployed(host).layout

    def killed(*args: object) -> None:  # as a SIGKILL after the files, before the restart
        raise SystemExit(137)

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(config, "activate", killed)
        verbs.config(host, ["set", "shop", "GREETING=new"])
    assert "GREETING=new" in host.path(dropin_paths(layout)[0]).read_text()
    host.ran.clear()
    result = verbs.config(host, ["set", "shop", "GREETING=new"])  # the same request again
    assert result.exit_code == 0 and RESTART in host.ran, result.lines  # not "nothing to change"
    assert "died at step config" in result.lines[0], result.lines


def test_workers_and_timers_get_the_values_too(host: FakeHost) -> None:
    from integrator.spec import ServiceSpec

    from .host_fakes import SPEC

    procs = {"worker": {"command": ["python", "-m", "shop.worker"]}}
    timers = {"prune": {"command": ["flask", "prune"], "on_calendar": "*:*:0/5"}}
    layout = deployed(
        host, ServiceSpec.from_dict({**SPEC.to_dict(), "processes": procs, "timers": timers})
    ).layout
    host.ran.clear()
    result = verbs.config(host, ["set", "shop", "QUEUE=fast"])
    assert result.exit_code == 0, result.lines
    # NAME-.service.d applies to every NAME-*.service: shop-proc-worker, shop-timer-prune
    prefix = host.path(layout.unit_dir / "shop-.service.d/50-integrator-config.conf").read_text()
    assert "Environment=QUEUE=fast" in prefix
    restarts = [r for r in host.ran if r.startswith("systemctl restart") and "shop-proc-worker.service" in r]
    assert restarts, host.ran
