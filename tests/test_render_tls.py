"""The TLS settings every handshake on an integrator port gets, whichever server{} answers it.

nginx negotiates curves (and versions) with the port's default server's settings before SNI picks
the site, so the catch-all HTTPS server must carry the shared Mozilla-intermediate include too:
without it OpenSSL 3 also offers X448 and secp521r1, which sslyze measured against a sandbox
(tests/test_tls_e2e.py).
"""

from __future__ import annotations

from integrator.layout import Layout
from integrator.render import render_all

from .spec_edit import make

SPEC = make("shop", "1.0", "shop:app", http={"https_port": 8443})


def test_the_https_catch_all_includes_the_shared_tls_settings() -> None:
    layout = Layout.for_spec(SPEC)
    files = {str(f.path): f.content for f in render_all(SPEC, layout, "r1", nginx_version=(1, 22, 1))}
    catch_all = files[str(layout.nginx_catch_all(8443, True))]
    site = files[str(layout.nginx_site)]
    include = f"include {layout.nginx_tls_include};"
    assert include in site
    assert f"    {include}" in catch_all.splitlines()  # a directive of its server{}
    assert include not in files[str(layout.nginx_catch_all(80, False))]
