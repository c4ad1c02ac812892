"""SELinux labels for RHEL hosts: which paths, which types, as argv and as a script."""

from __future__ import annotations

import re

from integrator.layout import Layout
from integrator.render.selinux import file_contexts, restorecon_argv, script, semanage_argv
from integrator.spec import ServiceSpec, parse_spec


def spec_with(**tls: str) -> ServiceSpec:
    data: dict[str, dict[str, str]] = {
        "service": {"name": "shop", "version": "1", "entry": "shop:create_app()"}
    }
    if tls:
        data["tls"] = tls
    return parse_spec(data)


def test_rules_cover_socket_venv_and_generated_certificate() -> None:
    spec = spec_with()
    rules = {r.type: r for r in file_contexts(spec, Layout.for_spec(spec, "rhel"))}
    assert rules["httpd_var_run_t"].pattern == "/run/shop(/.*)?"
    assert rules["bin_t"].pattern == "/opt/shop/venvs/[^/]+/bin(/.*)?"
    assert rules["cert_t"].pattern == "/etc/integrator/shop/tls(/.*)?"
    # Each pattern must match the paths the renderers actually use.
    layout = Layout.for_spec(spec, "rhel")
    assert re.fullmatch(rules["httpd_var_run_t"].pattern, str(layout.slot("a").socket_path))
    gunicorn = f"{layout.shared_venv('py3.11-0123456789abcdef')}/bin/gunicorn"  # via the release link
    assert re.fullmatch(rules["bin_t"].pattern, gunicorn)
    assert re.fullmatch(rules["cert_t"].pattern, str(layout.tls_key))


def test_provided_certificates_are_left_to_their_owner() -> None:
    spec = spec_with(mode="provided", cert="/etc/pki/tls/certs/shop.crt", key="/etc/pki/tls/private/shop.key")
    assert "cert_t" not in {r.type for r in file_contexts(spec, Layout.for_spec(spec, "rhel"))}


def test_argv_adds_or_modifies_and_script_quotes_patterns() -> None:
    spec = spec_with()
    rule = file_contexts(spec, Layout.for_spec(spec, "rhel"))[0]
    assert semanage_argv(rule, exists=False) == [
        "semanage",
        "fcontext",
        "-a",
        "-t",
        "httpd_var_run_t",
        "/run/shop(/.*)?",
    ]
    assert semanage_argv(rule, exists=True)[2] == "-m"
    assert restorecon_argv(rule) == ["restorecon", "-R", "/run/shop"]
    lines = script(spec, Layout.for_spec(spec, "rhel"))
    assert "semanage fcontext -a -t httpd_var_run_t '/run/shop(/.*)?'" in lines
    assert all(line.startswith(("#", "semanage", "restorecon")) for line in lines)
