"""`config set/unset`, `scale` and `secret set/rm` decided without a host (issue 10 item 3, issue
13 item 2): facts built by hand + a request -> ConfigPlan (host/config_plan.py), as tables.

What changed (secret-looking values hidden), the drop-in written (or removed), the credential,
and whether a restart is needed: a request that changes nothing restarts nothing. The values are
checked whole: names as [env]'s, no control characters, workers and threads within [server]'s
bounds. The drop-in's hostile values pass a real `systemd-analyze verify` and parse back to the
exact values (tests/config_parse.py reads unit files as systemd does).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from integrator.errors import UsageError
from integrator.host.config_plan import (
    ConfigFacts,
    ConfigRequest,
    check_assignment,
    config_words,
    effective,
    plan_config,
    scale_request,
    secret_words,
)
from integrator.layout import Layout
from integrator.render import render_all
from integrator.render.dropin import NO_HOST_CONFIG, HostConfig, dropin_paths, dropin_text
from integrator.render.transient import transient_argv

from .config_parse import systemd_directives
from .host_fakes import SPEC
from .render_checks import need_tool, run, systemd_root, unit_paths
from .spec_edit import edit

BASE = edit(SPEC, env={"vars": (("GREETING", "hello"), ("API_TOKEN", "base-token"))})
LAYOUT = Layout.for_spec(BASE)
PATHS = dropin_paths(LAYOUT)
DROPIN = PATHS[0]
# the prefix drop-in NAME-.service.d: the one systemd applies to the web slots (NAME-a/-b.service)
SLOTS_DROPIN = next(p for p in PATHS if p.parent.name == f"{LAYOUT.name}-.service.d")
RID = "R1"
AT, BY = "2026-11-29T15:00:00Z", "alice"
OLD = HostConfig(env=(("GREETING", "hi"),), by="bob", at="2026-11-01T00:00:00Z")
SHA = hashlib.sha256(b"s3cret\n").hexdigest()
OTHER = hashlib.sha256(b"rotated\n").hexdigest()


def facts(
    config: HostConfig = NO_HOST_CONFIG, dropin: str | None = "rendered", **credentials: str
) -> ConfigFacts:
    """The service with `config` recorded; its drop-ins as `config` renders them (the first
    one as `dropin` says if given: edited by hand, or None: deleted)."""
    extra = tuple(s for s in config.secrets if s not in BASE.secrets.files)
    found = {p: None if config.empty else dropin_text(config, LAYOUT, p, extra).encode() for p in PATHS}
    if dropin != "rendered":
        found[DROPIN] = None if dropin is None else dropin.encode()
    return ConfigFacts(LAYOUT, RID, BASE, config, found, {"api_key": SHA, **credentials})


# (case, facts, request, changes listed, restart, drop-in written: lines it must hold, or None: removed,
#  or "" unchanged)
PLANS = [
    ("set a new variable", facts(), ConfigRequest(set_env=(("COLOR", "blue"),)),
     ["set COLOR='blue'"], True, ["Environment=COLOR=blue"]),
    ("set one the release has: the host wins", facts(), ConfigRequest(set_env=(("GREETING", "hi"),)),
     ["set GREETING='hi'"], True, ["Environment=GREETING=hi"]),
    ("set the value it already has: no restart", facts(OLD), ConfigRequest(set_env=(("GREETING", "hi"),)),
     [], False, ""),
    ("same value, drop-in edited by hand: rewritten", facts(OLD, "[Service]\nEnvironment=GREETING=x\n"),
     ConfigRequest(set_env=(("GREETING", "hi"),)), [], True, ["Environment=GREETING=hi"]),
    ("same value, drop-in deleted: written again", facts(OLD, None),
     ConfigRequest(set_env=(("GREETING", "hi"),)), [], True, ["Environment=GREETING=hi"]),
    ("unset the last override: the drop-in goes", facts(OLD), ConfigRequest(unset=("GREETING",)),
     ["unset GREETING (back to [env]'s 'hello')"], True, None),
    ("unset what the host does not set: nothing", facts(OLD), ConfigRequest(unset=("COLOR",)), [], False, ""),
    ("a secret-looking value is hidden", facts(), ConfigRequest(set_env=(("API_TOKEN", "t0p"),)),
     ["set API_TOKEN=(hidden)"], True, ["Environment=API_TOKEN=t0p"]),
    ("scale workers", facts(), ConfigRequest(workers=4), ["workers 2 -> 4"], True,
     ['Environment="GUNICORN_CMD_ARGS=--workers 4"']),
    ("scale both, over an earlier scale", facts(HostConfig(workers=4)), ConfigRequest(workers=3, threads=8),
     ["workers 4 -> 3", "threads 4 -> 8"], True, ['Environment="GUNICORN_CMD_ARGS=--workers 3 --threads 8"']),
    ("scale to what it is: nothing", facts(HostConfig(workers=4)), ConfigRequest(workers=4), [], False, ""),
    ("secret the release names, same content: nothing", facts(), ConfigRequest(secret_set=("api_key", SHA)),
     [], False, ""),
    ("secret the release names, new content: restart, no drop-in", facts(),
     ConfigRequest(secret_set=("api_key", OTHER)), ["secret api_key set"], True, ""),
    ("a secret of the host's own: loaded by the drop-in", facts(), ConfigRequest(secret_set=("extra", OTHER)),
     ["secret extra set"], True, ["LoadCredential=extra:/etc/integrator/shop/credentials/extra"]),
    ("remove the host's own secret", facts(HostConfig(secrets=("extra",)), extra=OTHER),
     ConfigRequest(secret_rm="extra"), ["secret extra removed"], True, None),
    ("remove a secret the host does not have: nothing", facts(), ConfigRequest(secret_rm="extra"),
     [], False, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "found", "request_", "changes", "restart", "dropin"), PLANS, ids=[p[0] for p in PLANS]
)
def test_plan(
    case: str,
    found: ConfigFacts,
    request_: ConfigRequest,
    changes: list[str],
    restart: bool,
    dropin: list[str] | str | None,
) -> None:
    plan = plan_config(found, request_, BY, AT)
    assert list(plan.changes) == changes
    assert plan.restart is restart
    written = dict(plan.dropins)
    if dropin == "":
        assert written == {}
    elif dropin is None:
        assert written == dict.fromkeys(PATHS)
    else:
        assert set(written) == ({DROPIN} if case.startswith("same value") else set(PATHS))
        text = written[DROPIN]
        assert text is not None and all(line in text.splitlines() for line in dropin), text
        assert (
            f"last changed {AT if changes else found.config.at} by {BY if changes else found.config.by}"
            in text
        )
    # deciding again on what the plan leaves behind: nothing to do (idempotence)
    after = dict(found.dropins) | {p: None if t is None else t.encode() for p, t in plan.dropins}
    creds = dict(found.credentials) | ({plan.secret[0]: plan.secret[1]} if plan.secret else {})
    creds.pop(plan.remove_secret or "", None)
    again = ConfigFacts(LAYOUT, RID, BASE, plan.config, after, creds)
    assert not plan_config(again, request_, BY, AT).restart


def test_a_secret_looking_value_appears_in_no_plan_field_but_the_dropin() -> None:
    plan = plan_config(facts(), ConfigRequest(set_env=(("DB_PASSWORD", "hunter2"),)), BY, AT)
    assert "hunter2" not in repr(plan.changes)
    rows = effective(BASE, plan.config)
    assert {r["key"]: r["value"] for r in rows} == {"API_TOKEN": "(hidden)", "DB_PASSWORD": "(hidden)",
                                                    "GREETING": "hello"}  # fmt: skip
    assert "hunter2" not in repr(rows) and "base-token" not in repr(rows)


def test_who_is_kept_to_plain_characters() -> None:
    plan = plan_config(facts(), ConfigRequest(workers=3), "eve\n[Service]\nExecStartPre=/bin/sh", AT)
    text = dict(plan.dropins)[DROPIN]
    assert text is not None and "by eve??Service??ExecStartPre??bin?sh." in text
    assert not [line for line in text.splitlines() if line.startswith("ExecStartPre")]


REFUSED = [
    (lambda: check_assignment("A=line\nbreak"), "control character"),
    (lambda: check_assignment("A=cr\rhere"), "control character"),
    (lambda: check_assignment("A=" + "x" * 4097), "longer than 4096"),
    (lambda: check_assignment("1A=x"), "not a valid variable name"),
    (lambda: check_assignment("A-B=x"), "not a valid variable name"),
    (lambda: check_assignment("A B=x"), "not a valid variable name"),
    (lambda: check_assignment("PATH=/tmp"), "set by integrator itself"),
    (lambda: check_assignment("GUNICORN_CMD_ARGS=--workers 9"), "use `integrator scale`"),
    (lambda: check_assignment("novalue"), "is not KEY=VALUE"),
    (lambda: scale_request(["workers=0"]), "out of range: [server] workers is 1..64"),
    (lambda: scale_request(["workers=65"]), "out of range"),
    (lambda: scale_request(["threads=257"]), "[server] threads is 1..256"),
    (lambda: scale_request(["workers=-1"]), "whole numbers"),
    (lambda: scale_request(["workers=four"]), "whole numbers"),
    (lambda: scale_request(["wrkers=2"]), "workers=N and/or threads=M"),
    (lambda: config_words(["set", "shop"]), "at least one item"),
    (lambda: config_words(["shop", "extra"]), "config NAME |"),
    (lambda: secret_words(["set", "shop", "../etc/passwd"]), "not a valid name"),
    (lambda: secret_words(["rotate", "shop", "k"]), "secret set NAME KEY --from FILE"),
    (lambda: plan_config(facts(), ConfigRequest(secret_rm="api_key"), BY, AT), "release R1 needs it"),
]


@pytest.mark.parametrize(("call", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_bad_input_is_one_line_naming_it(call: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        call()  # type: ignore[operator]
    assert message in caught.value.message and "\n" not in caught.value.message


def test_the_words_of_each_command_line() -> None:
    assert config_words(["shop"]) == ("show", "shop", [])
    assert config_words(["set", "shop", "A=1", "B=x y"]) == ("set", "shop", ["A=1", "B=x y"])
    assert config_words(["unset", "shop", "A"]) == ("unset", "shop", ["A"])
    assert secret_words(["rm", "shop", "api_key"]) == ("rm", "shop", "api_key")
    assert scale_request(["threads=8"]) == ConfigRequest(threads=8)
    assert check_assignment("A=b=c") == ("A", "b=c") and check_assignment("A=") == ("A", "")


HOSTILE = ["100%", "%n%%", "back\\", "\\\\", "q\"uo'te", "two words", "$HOME ${HOME} $$", " lead ", "#x ;y",
           "日本 🚀", "a=b=c", ""]  # fmt: skip


def test_hostile_values_pass_systemd_analyze_verify_and_parse_back_exactly(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "apt-get install systemd")
    env = tuple((f"V{i}", value) for i, value in enumerate(HOSTILE))
    plan = plan_config(facts(), ConfigRequest(set_env=env, workers=3, secret_set=("extra", OTHER)), BY, AT)
    text = dict(plan.dropins)[SLOTS_DROPIN]
    assert text is not None
    files = [f for f in render_all(BASE, LAYOUT, RID) if f.path.suffix in (".service", ".socket")]
    root = systemd_root(tmp_path, files)
    target = root / SLOTS_DROPIN.relative_to("/")
    target.parent.mkdir(parents=True)
    target.write_text(text)
    result = run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *unit_paths(root, files)]
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr), result.stdout + result.stderr
    seen = [(d.key, d.value) for d in systemd_directives(text)]
    assert [v for k, v in seen if k == "Environment"] == [
        ("GUNICORN_CMD_ARGS=--workers 3",),
        *((f"{k}={v}",) for k, v in sorted(env)),
    ]
    assert ("LoadCredential", ("extra:/etc/integrator/shop/credentials/extra",)) in seen


def test_verify_sees_a_dropin_with_a_broken_line(tmp_path: Path) -> None:
    """The check above can fail: systemd-analyze reads the drop-in and reports what it cannot parse."""
    analyze = need_tool("systemd-analyze", "apt-get install systemd")
    files = [f for f in render_all(BASE, LAYOUT, RID) if f.path.suffix in (".service", ".socket")]
    root = systemd_root(tmp_path, files)
    target = root / SLOTS_DROPIN.relative_to("/")
    target.parent.mkdir(parents=True)
    target.write_text('[Service]\nEnvironment="A=\\q"\n')
    result = run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no", *unit_paths(root, files)]
    )
    assert "A=\\q" in result.stdout + result.stderr or "escape" in (result.stdout + result.stderr).lower()


def test_run_gets_the_host_overrides_after_the_release_env() -> None:
    host = HostConfig(env=(("GREETING", "hi $HOME"),), secrets=("extra",))
    argv = transient_argv(
        BASE, LAYOUT, RID, ["/bin/true"], unit="shop-run-1.service", stdio="pipe", host=host
    )
    setenv = [a for a in argv if a.startswith("--setenv=GREETING=")]
    assert setenv == ["--setenv=GREETING=hello", "--setenv=GREETING=hi $HOME"]  # the last one wins
    assert "--property=LoadCredential=extra:/etc/integrator/shop/credentials/extra" in argv
