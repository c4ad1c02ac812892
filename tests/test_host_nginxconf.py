"""Which sites already are nginx's default server, read from `nginx -T` output."""

from __future__ import annotations

from integrator.host.nginxconf import parse_default_servers

DUMP = """\
nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
# configuration file /etc/nginx/nginx.conf:
http {
    include /etc/nginx/conf.d/*.conf;
}

# configuration file /etc/nginx/sites-enabled/default:
server {
	listen 80 default_server;
	listen [::]:80 default_server;
	# listen 443 ssl default_server;
	listen unix:/run/x.sock default_server;
}

# configuration file /etc/nginx/conf.d/shop.conf:
server {
    listen 443 ssl http2 default_server;
    listen 127.0.0.1:8080;
    listen localhost default_server;
}
"""


def test_default_servers_with_their_files_and_ports() -> None:
    assert parse_default_servers(DUMP) == [
        ("/etc/nginx/sites-enabled/default", 80),
        ("/etc/nginx/sites-enabled/default", 80),
        ("/etc/nginx/conf.d/shop.conf", 443),
        ("/etc/nginx/conf.d/shop.conf", 80),
    ]


def test_no_default_servers() -> None:
    assert parse_default_servers("# configuration file /etc/nginx/nginx.conf:\nserver { listen 80; }\n") == []
