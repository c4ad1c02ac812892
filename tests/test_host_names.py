"""Host verbs validate every name they are given exactly as service.toml does (issue 8, finding 9),
and `verify` validates the bundle's spec whole.

`uninstall ../srv/www` removed /srv/www and `uninstall default` the stock default.conf. Here
each verb runs against a temporary root through a System that refuses to run any program:
a bad name must stop it before anything is read, locked, run or removed, with exit 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import pytest

from integrator import cli
from integrator.bundle import manifest as mf
from integrator.bundle.commands import verify
from integrator.bundle.zipapp import write_pyz
from integrator.errors import BundleError, SpecError, UsageError
from integrator.host import journal, lifecycle, pyzmain, status, uninstall
from integrator.host.secrets import parse_secret_args
from integrator.host.system import Proc, System
from integrator.targets import commands, transport

from .test_bundle_verify import SPEC, _manifest, _members

BAD_NAMES = ["../srv/www", "default", "shop\n", "Shop", "/etc", "shop.conf", "nginx", ""]


class NoPrograms(System):
    """A root-like System below a temporary directory that records, and refuses, every program."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.ran: list[tuple[str, ...]] = []

    def is_root(self) -> bool:
        return True

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        self.ran.append(tuple(argv))
        raise AssertionError(f"ran {list(argv)}")


def _host(root: Path) -> NoPrograms:
    """What the reported cases deleted: a web root and nginx's stock default site."""
    files = {
        "etc/os-release": "ID=debian\n",
        "srv/www/index.html": "the web site\n",
        "etc/nginx/conf.d/default.conf": "server { listen 80; }\n",
        "opt/shop/releases/R1/marker": "a deployed service\n",
        "var/lib/integrator/shop/releases.json": '{"service": "shop", "releases": []}\n',
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return NoPrograms(root)


def _listing(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() if p.is_file() else "/" for p in sorted(root.rglob("*"))}


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NoPrograms:
    system = _host(tmp_path / "root")
    assert commands.LocalTarget is transport.LocalTarget  # bound before the patch below

    @dataclasses.dataclass(frozen=True)
    class HereBelowRoot(transport.LocalTarget):
        system: System = dataclasses.field(default_factory=lambda: system)

    monkeypatch.setattr(transport, "LocalTarget", HereBelowRoot)
    monkeypatch.setattr(pyzmain, "System", lambda: system)  # the bundle's verbs act here too
    return system


def _run(main: Callable[[], int]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main()
    return code, err.getvalue()


VERBS = [
    ["status"],
    ["releases"],
    ["logs"],
    ["rollback"],
    ["uninstall"],
    ["uninstall", "--purge"],
    ["doctor"],
]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_host_verb_refuses_a_bad_name_and_touches_nothing(
    host: NoPrograms, verb: list[str], bad: str, tmp_path: Path
) -> None:
    before = _listing(host.root)
    for entry in ("cli", "pyz"):
        argv = [verb[0], bad, *verb[1:]]
        if entry == "cli":
            code, err = _run(functools.partial(cli.main, argv))
        else:
            code, err = _run(functools.partial(pyzmain.main, argv, bundle=tmp_path / "shop-1.0.pyz"))
        assert code == 2, (entry, err)
        assert err.count("\n") == 1 and "service name" in err, (entry, err)
    assert host.ran == [] and _listing(host.root) == before


# the verbs whose NAME comes after other words
WORDS = [
    ["config", "NAME"],
    ["config", "set", "NAME", "A=1"],
    ["config", "unset", "NAME", "A"],
    ["scale", "NAME", "workers=2"],
    ["secret", "rm", "NAME", "k"],
]


@pytest.mark.parametrize("bad", BAD_NAMES)
@pytest.mark.parametrize("verb", WORDS, ids=" ".join)
def test_config_scale_and_secret_refuse_a_bad_name_and_touch_nothing(
    host: NoPrograms, verb: list[str], bad: str, tmp_path: Path
) -> None:
    before = _listing(host.root)
    argv = [bad if word == "NAME" else word for word in verb]
    for main in (
        functools.partial(cli.main, argv),
        functools.partial(pyzmain.main, argv, bundle=tmp_path / "b.pyz"),
    ):
        code, err = _run(main)
        assert code == 2 and err.count("\n") == 1 and "service name" in err, err
    assert host.ran == [] and _listing(host.root) == before


@pytest.mark.parametrize("bad", ["../srv/www", "default"])
def test_the_reported_uninstalls_remove_nothing(host: NoPrograms, bad: str) -> None:
    code, err = _run(lambda: cli.main(["uninstall", bad, "--purge"]))
    assert code == 2, err
    assert (host.root / "srv/www/index.html").is_file()
    assert (host.root / "etc/nginx/conf.d/default.conf").is_file()


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_host_functions_refuse_a_hand_made_name(tmp_path: Path, bad: str) -> None:
    """A remote argv can be written by hand: the host side checks the name itself."""
    system = _host(tmp_path)
    before = _listing(tmp_path)
    calls: list[Callable[[], object]] = [
        lambda: uninstall.uninstall_local(system, bad, True),
        lambda: lifecycle.rollback_local(system, bad, None),
        lambda: status.status_local(system, bad),
        lambda: status.list_local(system, bad),
        lambda: status.doctor_local(system, bad),
        lambda: journal.logs_local(system, bad, "all", False, None, 10),
    ]
    for call in calls:
        with pytest.raises(SpecError, match="service name"):
            call()
    assert system.ran == [] and _listing(tmp_path) == before


def test_one_name_rule_for_service_toml_and_the_host() -> None:
    from integrator.spec import check_service_name

    assert check_service_name("shop") == "shop"
    for bad in BAD_NAMES:
        with pytest.raises(SpecError) as err:
            check_service_name(bad)
        assert "\n" not in err.value.message


def test_a_service_directory_with_a_bad_name_is_not_listed(tmp_path: Path) -> None:
    system = _host(tmp_path)
    (tmp_path / "var/lib/integrator/Bad..name").mkdir()
    (tmp_path / "opt/Bad..name/releases").mkdir(parents=True)
    assert [layout.name for layout in status.managed_services(system)] == ["shop"]


def test_rollback_to_a_bad_release_id_is_refused(host: NoPrograms) -> None:
    before = _listing(host.root)
    for bad in ("../../srv/www", "R1\n", "R 1", ""):
        code, err = _run(functools.partial(cli.main, ["rollback", "shop", "--to", bad]))
        assert code == 2 and err.count("\n") == 1 and "release id" in err, err
        with pytest.raises(UsageError, match="release id"):
            lifecycle.rollback_local(host, "shop", bad)
    assert host.ran == [] and _listing(host.root) == before


def test_secret_names_on_the_command_line_are_validated() -> None:
    assert parse_secret_args(["db_password=/f"]) == {"db_password": Path("/f")}
    for bad in ("../x=/f", "db\n=/f", "Db=/f", "a/b=/f"):
        with pytest.raises(UsageError, match="--secret"):
            parse_secret_args([bad])


# --- verify validates the spec ----------------------------------------------------------------


def _bundle_with_spec(path: Path, spec: dict[str, Any], name: str = SPEC.name) -> Path:
    members = _members()
    members[mf.SPEC_PATH] = (json.dumps(spec, indent=2, sort_keys=True) + "\n").encode()
    manifest = dataclasses.replace(_manifest(members), spec=spec, name=name)
    write_pyz(path, members, manifest.to_json(), None, epoch=1767225600)
    return path


def test_verify_refuses_a_bundle_whose_spec_lacks_tls(tmp_path: Path) -> None:
    spec = {k: v for k, v in SPEC.to_dict().items() if k != "tls"}
    bad = _bundle_with_spec(tmp_path / "shop-1.2.0.pyz", spec)
    with pytest.raises(BundleError, match=r"payload/spec.json: tls is missing"):
        verify(bad)
    code, err = _run(lambda: cli.main(["verify", str(bad)]))
    assert code == 1 and err.count("\n") == 1 and "tls is missing" in err, err
    proc = subprocess.run([sys.executable, "-I", str(bad), "verify"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "tls is missing" in proc.stderr
    # deploy --plan (which crashed with a traceback) refuses the same way, before looking at the host
    code, err = _run(lambda: pyzmain.main(["deploy", "--plan"], bundle=bad))
    assert code == 1 and "tls is missing" in err, err


def test_verify_refuses_a_hostile_spec_value_and_a_manifest_name_that_differs(tmp_path: Path) -> None:
    good = SPEC.to_dict()
    injected = {
        **good,
        "service": {**good["service"], "description": "Shop\r[Service]\rExecStartPre=+/bin/sh -c id"},
    }
    bad = _bundle_with_spec(tmp_path / "a.pyz", injected)
    with pytest.raises(BundleError, match=r"\[service\] description .*U\+000D"):
        verify(bad)
    other = _bundle_with_spec(tmp_path / "b.pyz", SPEC.to_dict(), name="../srv/www")
    with pytest.raises(BundleError, match="name"):
        verify(other)
