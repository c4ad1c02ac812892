"""ACME HTTP-01 on the site's plain-HTTP server: a token below /.well-known/acme-challenge/ is
answered from the service's root-owned webroot (`Layout.acme_webroot`), everything else still
redirects. So certbot (`--webroot -w WEBROOT`) or any ACME client can renew a provided
certificate while the site serves; render/tls_watch.py makes nginx load the renewed one.
"""

from __future__ import annotations

from ..layout import Layout
from .nginx_text import block

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
# A token is base64url (RFC 8555 section 8.3): no dot, no slash, so no other file, directory
# or `..` below the webroot is ever looked up.
TOKEN_RE = "[A-Za-z0-9_-]+"


def acme_challenge(layout: Layout) -> list[str]:
    """The challenge location of the redirect server{}."""
    token = block(
        f'location ~ "^{CHALLENGE_PREFIX.replace(".", chr(92) + ".")}{TOKEN_RE}$"',
        ["try_files $uri =404;"],
    )
    body = [
        f"root {layout.acme_webroot};",
        "default_type text/plain;",
        "# Only root writes there; a symbolic link in the path is refused, not followed.",
        "disable_symlinks on;",
        *token,
        "return 404;",
    ]
    return [
        f"# ACME HTTP-01 challenges: certbot --webroot -w {layout.acme_webroot} (tokens only).",
        *block(f"location ^~ {CHALLENGE_PREFIX}", body),
    ]
