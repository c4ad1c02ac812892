"""A site's nginx logs go to the journal, tagged like the app's lines, so `logs NAME` shows
both in one time order (host/journal.py picks nginx's lines by nginx.service and the tag).

nginx writes to syslog's /dev/log natively; journald answers there on Debian and RHEL alike.
The access line is one JSON object (escape=json: client-chosen text cannot break it), written
only for a request the app did not log itself (`log_filter`): the app's own line carries the same
request id, so a request it answered is in the journal once, and journald stores one line less
per proxied request (bench/README.md: about 50 us of journald's CPU each).
"""

from __future__ import annotations

from ..layout import Layout
from .nginx_text import block

# `nohostname`: journald takes the word after the date as the tag; a hostname there would be
# read as one. `daemon`, not nginx's default local7: RHEL's rsyslog sends local7 to boot.log.
SYSLOG = "syslog:server=unix:/dev/log,facility=daemon,tag={tag},nohostname"
# nginx's own level: 502s (socket full, app down), upstream timeouts, bodies over the limit.
ERROR_LEVEL = "error"
# (key, nginx variable, quoted): numbers nginx always prints as numbers stay unquoted.
ACCESS_FIELDS = (
    ("time", "$time_iso8601", True),
    ("remote_addr", "$remote_addr", True),
    ("host", "$host", True),
    ("method", "$request_method", True),
    ("uri", "$request_uri", True),
    ("protocol", "$server_protocol", True),
    ("status", "$status", False),
    ("body_bytes_sent", "$body_bytes_sent", False),
    ("request_time", "$request_time", False),
    ("upstream_status", "$upstream_status", True),
    ("upstream_response_time", "$upstream_response_time", True),
    ("tls", "$ssl_protocol", True),
    ("referer", "$http_referer", True),
    ("user_agent", "$http_user_agent", True),
    ("request_id", "{request_id}", True),  # the site's id variable: the app logs the same one
)


def log_format_name(layout: Layout) -> str:
    """One format per site: log_format is http-wide and a name declared twice fails nginx -t."""
    return f"{layout.name}_json"


def log_format(layout: Layout, request_id: str) -> list[str]:
    """The access line's format, declared at http level (the site file is included there);
    `request_id`: the nginx variable holding the id the app is given too."""
    fields = [
        f'"{key}":"{var}"' if quoted else f'"{key}":{var}'
        for key, var, quoted in ((k, v.format(request_id=request_id), q) for k, v, q in ACCESS_FIELDS)
    ]
    parts = [f"'{{{fields[0]},'", *(f"'{f},'" for f in fields[1:-1]), f"'{fields[-1]}}}'"]
    return [
        "# The access line: one JSON object per request (escape=json: whatever a client sends",
        "# stays inside its string).",
        f"log_format {log_format_name(layout)} escape=json",
        *(f"    {part}" for part in parts[:-1]),
        f"    {parts[-1]};",
    ]


def log_filter(variable: str) -> list[str]:
    """`variable` is 1 where nginx's access line is the request's only one, else 0: no upstream
    (static files, redirects, nginx's own 4xx such as the name check's or 413), the app failed
    (502/504: nginx answered for it; gunicorn never logs those), a retry (several statuses), or a
    status other than the app's. The regexes are tried in order; the first match wins.
    A fleet's load balancer uses the same rule: a request an app host's app answered is in that
    host's journal, under the id the balancer passed on."""
    return [
        "# Which requests get nginx's access line: those the app did not log itself (its line has",
        "# the same request_id), i.e. no upstream, an upstream failure or another status than the app's.",
        *block(
            f'map "$upstream_status:$status" {variable}',
            ["default 1;", '"~^50[24]:" 1;', '"~^([0-9]{3}):\\1$" 0;'],
        ),
    ]


def log_directives(layout: Layout, only_if: str) -> list[str]:
    """Inside each of the site's server{}: its lines to the journal instead of nginx's files;
    the access line only where `only_if` (log_filter's variable) is 1."""
    target = SYSLOG.format(tag=layout.journal_tag)
    return [
        f"# To the journal, tagged {layout.journal_tag} like the app: `integrator logs {layout.name}`.",
        f"access_log {target} {log_format_name(layout)} if={only_if};",
        f"error_log {target} {ERROR_LEVEL};",
    ]
