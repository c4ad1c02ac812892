"""ACME-ready TLS as rendered (issue 10 item 5): the challenge location on port 80 and the
watch units of a provided certificate, as data."""

from __future__ import annotations

import dataclasses
import re

import pytest

from integrator.render import render_all
from integrator.render.nginx import site

from .render_checks import CASES, DEFAULT, Case


def _redirect_server(case: Case) -> str:
    text = site(case.spec, case.layout, case.nginx_version)
    return re.findall(r"^server \{\n(.*?)^\}", text, re.S | re.M)[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_port_80_answers_tokens_from_the_webroot_and_redirects_the_rest(case: Case) -> None:
    body = _redirect_server(case)
    top = [line for line in body.splitlines() if line.startswith("    ") and not line.startswith("     ")]
    # A server-level return would run before any location: the challenge would be redirected.
    assert not any(line.strip().startswith("return 301") for line in top)
    assert "    location ^~ /.well-known/acme-challenge/ {" in top
    assert f"        root {case.layout.acme_webroot};" in body
    assert '        location ~ "^/\\.well-known/acme-challenge/[A-Za-z0-9_-]+$" {' in body
    assert "        disable_symlinks on;" in body and "        return 404;" in body
    assert re.search(r"^    location / \{\n        return 301 https://", body, re.M)


def test_the_webroot_is_the_services_own() -> None:
    assert str(DEFAULT.layout.acme_webroot) == "/etc/integrator/demo/acme"


@pytest.mark.parametrize("mode", ["self-signed", "local-ca", "provided"])
def test_only_a_provided_certificate_is_watched(mode: str) -> None:
    provided = next(c for c in CASES if c.spec.tls.mode == "provided")
    spec = provided.spec
    if mode != "provided":
        spec = dataclasses.replace(spec, tls=dataclasses.replace(spec.tls, mode=mode, cert=None, key=None))
    files = {str(f.path): f.content for f in render_all(spec, provided.layout, provided.release_id)}
    path_unit, reload_unit = (str(p) for p in provided.layout.tls_watch_unit_paths)
    if mode != "provided":
        assert path_unit not in files and reload_unit not in files
        return
    unit = files[path_unit].splitlines()
    watched = [line.split("=", 1)[1] for line in unit if line.startswith("PathChanged=")]
    # The files, and their directories: a renamed-in symbolic link changes only the directory.
    assert watched == [spec.tls.cert, spec.tls.key, "/etc/pki/tls/certs", "/etc/pki/tls/private"]
    assert "\nUnit=billing-tls.service\n" in files[path_unit]
    assert "\nExecStart=/bin/systemctl try-reload-or-restart nginx.service\n" in files[reload_unit]
