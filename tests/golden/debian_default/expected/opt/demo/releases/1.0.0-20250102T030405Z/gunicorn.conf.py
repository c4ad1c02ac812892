# /opt/demo/releases/1.0.0-20250102T030405Z/gunicorn.conf.py
# Rendered by integrator and rewritten on every deploy: change service.toml, not this file.
# Settings: https://docs.gunicorn.org/en/stable/settings.html

# No `bind`: demo.socket owns /run/demo/gunicorn.sock and hands it over as fd 3
# (LISTEN_FDS); gunicorn serves inherited sockets instead of binding its own.
# gunicorn 23 calls listen() on it again with this backlog: keep it equal to the unit's Backlog=.
backlog = 1024

# gthread keeps nginx's upstream connections alive (the sync worker answers Connection: close).
worker_class = "gthread"
workers = 2
threads = 4
# A worker silent this long is killed and replaced.
timeout = 30
# On stop and reload, workers get this long to finish requests (TimeoutStopSec= is longer).
graceful_timeout = 30
# Idle connections from nginx stay open a bit longer than nginx keeps them (60s),
# so nginx never reuses a connection gunicorn is closing.
keepalive = 65
# Worker heartbeat files in RAM, not on disk: a slow disk must not make healthy workers
# look dead.
worker_tmp_dir = "/dev/shm"

# The app logs one JSON line per request itself; gunicorn's own messages go to stderr,
# which systemd sends to the journal.
accesslog = None
errorlog = "-"
proc_name = "demo"

# Only nginx can connect (the socket is 0660, group of the nginx workers), so the
# X-Forwarded-* headers it sets are trusted; gunicorn trusts unix-socket peers anyway,
# '*' says so explicitly. Only X-Forwarded-Proto (set by nginx) decides http vs https:
# a client-sent X-Forwarded-Ssl cannot contradict it and turn requests into errors.
forwarded_allow_ips = "*"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# gunicorn >= 25.1 opens a control socket under $HOME/.gunicorn, which fails on the
# read-only file system. Disabled here rather than with --no-control-socket in the unit:
# that flag makes gunicorn 23 refuse to start, this setting is ignored by it.
control_socket_disable = True
