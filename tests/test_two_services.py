"""`new shop` + `clone shop shop2`: two services whose rendered host files never clash."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from integrator.cli import main
from integrator.layout import Layout
from integrator.render import render_all
from integrator.spec import load_spec


@pytest.mark.parametrize("distro", ["debian", "rhel"])
def test_clone_renders_files_that_do_not_clash(distro: str, tmp_path: Path) -> None:
    assert main(["new", "shop", str(tmp_path / "shop")]) == 0
    assert main(["clone", str(tmp_path / "shop"), "shop2", str(tmp_path / "shop2")]) == 0
    rendered: dict[str, dict[PurePosixPath, str]] = {}
    for name in ("shop", "shop2"):
        spec = load_spec(tmp_path / name)
        assert spec.name == name
        rendered[name] = {f.path: f.content for f in render_all(spec, Layout.for_spec(spec, distro), "r1")}

    shared = set(rendered["shop"]) & set(rendered["shop2"])
    # Only the shared nginx snippets and the per-port catch-alls may sit at the same path, and
    # then with the same bytes.
    assert all(
        str(path).startswith("/etc/nginx/integrator/")
        or str(path).startswith("/etc/nginx/conf.d/00-integrator-catch-all-")
        for path in shared
    )
    assert all(rendered["shop"][p] == rendered["shop2"][p] for p in shared)

    def facts(name: str) -> dict[str, set[str]]:
        text = "\n".join(rendered[name].values())
        return {
            "sockets": set(re.findall(r"ListenStream=(\S+)", text)),
            "upstreams": set(re.findall(r"upstream (\S+) \{", text)),
            "users": set(re.findall(r"^User=(\S+)$", text, re.M)),
            "server_names": set(re.findall(r"server_name ([^;]+);", text)),
        }

    one, two = facts("shop"), facts("shop2")
    for key in one:
        assert one[key] and two[key], key
        assert not one[key] & two[key], f"{key} clash: {one[key] & two[key]}"
