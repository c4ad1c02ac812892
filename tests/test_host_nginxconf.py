"""What other sites on the host already claim, read from `nginx -T` output."""

from __future__ import annotations

from integrator.host.nginxconf import clashes, parse_servers
from integrator.spec import ServiceSpec, parse_spec

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
	server_name _;
	location / {
		try_files $uri $uri/ =404;
	}
}

# configuration file /etc/nginx/conf.d/shop.conf:
upstream shop_app {
    server unix:/run/shop/gunicorn.sock;
}
server {
    listen 443 ssl http2;
    server_name shop shop.example.com;
    location / { proxy_pass http://shop_app; }
}
server { listen 80; server_name shop; return 301 https://$host$request_uri; }
server {
    listen
        8443 ssl;  # a directive over two lines
    server_name
        shop.internal;
}
"""


def spec(**http: object) -> ServiceSpec:
    return parse_spec({"service": {"name": "billing", "version": "1", "entry": "b:app"}, "http": http})


def test_servers_with_ports_names_and_defaults() -> None:
    servers = parse_servers(DUMP)
    assert [(s.path, s.ports, s.names, s.default_ports) for s in servers] == [
        ("/etc/nginx/sites-enabled/default", {80}, {"_"}, {80}),
        ("/etc/nginx/conf.d/shop.conf", {443}, {"shop", "shop.example.com"}, set()),
        ("/etc/nginx/conf.d/shop.conf", {80}, {"shop"}, set()),
        ("/etc/nginx/conf.d/shop.conf", {8443}, {"shop.internal"}, set()),
    ]


def test_a_new_name_fits_and_our_own_file_never_clashes() -> None:
    servers = parse_servers(DUMP)
    assert clashes(servers, spec(), "/etc/nginx/conf.d/billing.conf") == []
    shop = parse_spec({"service": {"name": "shop", "version": "1", "entry": "s:app"}})
    assert clashes(servers, shop, "/etc/nginx/conf.d/shop.conf") == []


def test_a_name_served_elsewhere_and_a_second_default_server_clash() -> None:
    servers = parse_servers(DUMP)
    found = clashes(servers, spec(server_names=["shop.example.com"]), "/etc/nginx/conf.d/billing.conf")
    assert found == [
        "/etc/nginx/conf.d/shop.conf already serves shop.example.com on port 443",
    ]
    found = clashes(servers, spec(default_server=True), "/etc/nginx/conf.d/billing.conf")
    assert found == ["/etc/nginx/sites-enabled/default already is nginx's default server for port 80"]
