"""The spec is the single source of truth: strict, one-line errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrator.errors import SpecError
from integrator.spec import ServiceSpec, dump_spec_toml, load_spec, parse_spec

MINIMAL: dict[str, dict[str, object]] = {
    "service": {"name": "shop", "version": "1.2.0", "entry": "shop:create_app()"}
}


def with_(table: str, **values: object) -> dict[str, dict[str, object]]:
    data = {k: dict(v) for k, v in MINIMAL.items()}
    data.setdefault(table, {}).update(values)
    return data


def test_a_release_command_stays_argv() -> None:
    argv = ["flask", "--app", "shop:create_app()", "db", "upgrade", "a b; $(id)", ""]
    spec = parse_spec(with_("deploy", release=argv, release_timeout=120))
    assert spec.deploy.release == tuple(argv) and spec.deploy.release_timeout == 120
    assert parse_spec(with_("deploy", release=["/usr/bin/env"])).deploy.release == ("/usr/bin/env",)
    assert parse_spec(MINIMAL).deploy.release == ()


def test_a_build_command_stays_argv() -> None:
    argv = ["python", "manage.py", "collectstatic", "--noinput", "a b; $(id)", ""]
    assert parse_spec(with_("package", build=argv)).package.build == tuple(argv)
    assert parse_spec(with_("package", build=["/usr/bin/make"])).package.build == ("/usr/bin/make",)
    assert parse_spec(MINIMAL).package.build == ()


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.name == "shop"
    assert spec.server.workers == 2 and spec.server.threads == 4
    assert spec.security.network == "none"
    assert spec.tls.mode == "self-signed"
    assert spec.http.health_path == "/healthz"
    assert spec.effective_server_names == ("shop",)
    assert spec.wsgi_module == "shop"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (with_("service", name="Shop"), "[service] name 'Shop' is not valid"),
        (with_("service", name="1shop"), "[service] name '1shop' is not valid"),
        (with_("service", name="shop-x"), "[service] name 'shop-x' is not valid"),
        (with_("service", name="a" * 40), "is not valid"),
        (with_("service", name="nginx"), "'nginx' is reserved"),
        (with_("service", name="postgres"), "'postgres' is a system or service account on Debian or RHEL"),
        (with_("service", name="daemon"), "'daemon' is a system or service account"),
        (with_("service", name="bin"), "'bin' is a system or service account"),
        (with_("service", name="wheel"), "'wheel' is a system or service account"),  # RHEL group
        (with_("service", name="plugdev"), "'plugdev' is a system or service account"),  # Debian group
        (with_("service", entry="shop"), "[service] entry"),
        (with_("service", version="one"), "[service] version"),
        (with_("server", workers="2"), "[server] workers must be an integer, got '2'"),
        (with_("server", workers=True), "[server] workers must be an integer"),
        (with_("server", workers=0), "[server] workers must be between 1 and 64"),
        (with_("server", wokers=2), "unknown key [server] wokers"),
        ({**MINIMAL, "nginx": {}}, "unknown table [nginx]"),
        (with_("http", server_names=["bad name"]), "[http] server_names"),
        (with_("http", server_names="shop.example"), "[http] server_names must be a list"),
        (with_("http", health_path="healthz"), "[http] health_path"),
        (with_("http", http_port=443), "[http] https_port must differ"),
        (with_("tls", mode="letsencrypt"), "[tls] mode must be one of self-signed, local-ca, provided"),
        (with_("tls", mode="provided", cert="/etc/x.crt"), "[tls] key is required"),
        (
            with_("tls", mode="provided", cert="x.crt", key="/k"),
            "[tls] cert 'x.crt' must be an absolute path",
        ),
        (with_("env", PATH="/bin"), "[env] PATH is set by integrator itself"),
        (with_("env", **{"1X": "y"}), "[env] '1X' is not a valid variable name"),
        (with_("env", PORT=8080), "[env] PORT must be a string"),
        (with_("secrets", files=["db password"]), "[secrets] files"),
        (with_("limits", memory_max="lots"), "[limits] memory_max"),
        (with_("security", network="host"), "[security] network must be one of none, outbound"),
        (with_("deploy", keep_releases=1), "[deploy] keep_releases must be between 2 and 100"),
        (with_("deploy", release="flask db upgrade"), "[deploy] release must be a list"),
        (
            with_("deploy", release=["flask", "db\nupgrade"]),
            "[deploy] release 'db\\nupgrade' contains a control",
        ),
        (with_("deploy", release=["flask", "x\x00"]), "contains a control character"),
        (with_("deploy", release=["./manage.py"]), "[deploy] release './manage.py': the program must be"),
        (with_("deploy", release=["$SHELL"]), "the program must be a plain name or an absolute path"),
        (
            with_("deploy", release=["flask", "x" * 4097]),
            "[deploy] release has an argument longer than 4096 characters",
        ),
        (with_("deploy", release=["true"] * 65), "[deploy] release has more than 64 arguments"),
        (with_("deploy", release_timeout=0), "[deploy] release_timeout must be between 1 and 86400"),
        (with_("package", build="python manage.py collectstatic"), "[package] build must be a list"),
        (with_("package", build=["python", "a\nb"]), "[package] build 'a\\nb' contains a control"),
        (with_("package", build=["./manage.py"]), "[package] build './manage.py': the program must be"),
        (with_("package", build=["npm", "x" * 4097]), "[package] build has an argument longer than 4096"),
        (with_("package", build=["true"] * 65), "[package] build has more than 64 arguments"),
        ({"service": {"name": "shop", "version": "1"}}, "[service] entry is required"),
    ],
)
def test_bad_specs_give_one_line_errors_naming_the_field(data: dict, needle: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(data, source="service.toml")
    message = str(err.value)
    assert needle in message
    assert message.startswith("service.toml: ")
    assert "\n" not in message


def test_json_round_trip_is_lossless() -> None:
    data = with_("env", B="2", A="1")
    data["secrets"] = {"files": ["db_password"]}
    data["tls"] = {"mode": "provided", "cert": "/etc/pki/a.crt", "key": "/etc/pki/a.key"}
    spec = parse_spec(data)
    assert ServiceSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["env"] == {"A": "1", "B": "2"}


def test_toml_dump_loads_back_identical(tmp_path: Path) -> None:
    data = with_("http", server_names=["shop.example.com", "www.shop.example.com"], hsts=False)
    data["env"] = {"SHOP_GREETING": 'say "hi" \\ there'}
    spec = parse_spec(data)
    (tmp_path / "service.toml").write_text(dump_spec_toml(spec))
    assert load_spec(tmp_path) == spec


def test_load_spec_reports_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path)
    (tmp_path / "service.toml").write_text("[service\nname=")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(tmp_path)
