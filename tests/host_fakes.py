"""One fake host for the fast host-decision tests: a `System` below a temporary root.

Files are real (below the root); programs are not: `systemctl` and `nginx` answer from the
fields below and change them as systemd would, `useradd`/`userdel` change the user dicts, and
`openssl` runs for real (certificates made in the temporary root). `on(prefix, action)` acts
when a program is run (to make a step fail or a signal arrive). The health check is the one
network fact: `fake_health` answers it from `serving` and the unit's state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from integrator.host import ownership, releases, venvs
from integrator.host.activate import HostContext, activate
from integrator.host.apply import activation_for
from integrator.host.bundleio import BundleInfo
from integrator.host.facts import probe_host
from integrator.host.fs import FileWriter
from integrator.host.health import Probe
from integrator.host.release_facts import tree_dirs
from integrator.host.releases import OK, ReleaseRecord
from integrator.host.secrets import install_secrets
from integrator.host.system import Account, Proc, System
from integrator.host.tls import ensure_tls
from integrator.host.users import ensure_user
from integrator.layout import Layout
from integrator.spec import ServiceSpec, parse_spec

REAL_PROGRAMS = ("openssl",)
_READ_ONLY_ANSWERS: dict[tuple[object, ...], Proc] = {}
SPEC = parse_spec(
    {
        "service": {"name": "shop", "version": "1.0", "entry": "shop:app"},
        "http": {"server_names": ["shop.example"]},
        "secrets": {"files": ["api_key"]},
    }
)
SHA_A, SHA_B = "a" * 64, "b" * 64
RID = "20260101T000000Z-aaaaaaaa"


class FakeHost(System):
    """Root-like; records every program it is asked to run in `ran` (one string each)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc/os-release").write_text("ID=debian\nPRETTY_NAME=Debian 12\n")
        python = root / "usr/bin/python3"
        python.parent.mkdir(parents=True, exist_ok=True)
        python.write_text("#!/bin/sh\n")
        python.chmod(0o755)
        self.users: dict[str, Account] = {}
        self.groups: dict[str, Account] = {}
        self.ran: list[str] = []
        self.actions: dict[str, Callable[[], None]] = {}
        self.active: set[str] = {"nginx.service"}  # units `systemctl show` reports active
        self.nginx_dump: str | None = ""  # `nginx -T` output; None: it fails
        self.nginx_valid = True  # whether `nginx -t` passes
        self.python_version = "3.11.2"
        self.serving = True  # whether an active service answers its health check

    def on(self, prefix: str, action: Callable[[], None]) -> None:
        self.actions[prefix] = action

    def is_root(self) -> bool:
        return True

    def user(self, name: str) -> Account | None:
        return self.users.get(name)

    def group(self, name: str) -> Account | None:
        return self.groups.get(name)

    def add_user(self, name: str, uid: int, comment: str) -> None:
        self.users[name] = Account(name, uid, uid, comment)
        self.groups[name] = Account(name, uid, uid)

    def run(self, argv: Sequence[str], **kwargs: Any) -> Proc:
        line = " ".join(argv)
        self.ran.append(line)
        for prefix, action in list(self.actions.items()):
            if line.startswith(prefix):
                del self.actions[prefix]
                action()
        if argv[0] in REAL_PROGRAMS:
            return self._real(list(argv), **kwargs)
        out, err, code = self._answer(list(argv))
        return Proc(tuple(argv), code, out, err)

    def _real(self, argv: list[str], **kwargs: Any) -> Proc:
        """Run it; `openssl x509/pkey -in FILE` only reads FILE, so its answer is kept by content
        (the same certificate is read again and again: this halves the tests' time)."""
        readonly = argv[:2] in (["openssl", "x509"], ["openssl", "pkey"]) and "-req" not in argv
        if not readonly or "-in" not in argv:
            return super().run(argv, **kwargs)
        at = argv.index("-in") + 1
        try:
            key = (*argv[:at], *argv[at + 1 :], Path(argv[at]).read_bytes())
        except OSError:
            return super().run(argv, **kwargs)
        if key not in _READ_ONLY_ANSWERS:
            _READ_ONLY_ANSWERS[key] = super().run(argv, **kwargs)
        proc = _READ_ONLY_ANSWERS[key]
        if kwargs.get("check", True) and not proc.ok:
            return super().run(argv, **kwargs)  # raises as it would
        return replace(proc, argv=tuple(argv))

    def _answer(self, argv: list[str]) -> tuple[str, str, int]:
        if argv[0] == "useradd":
            self.add_user(argv[-1], 900 + len(self.ran), argv[argv.index("--comment") + 1])
        elif argv[0] == "userdel":
            user = self.users.pop(argv[1])
            if self.groups.get(argv[1], user).id == user.gid:
                del self.groups[argv[1]]
        elif argv[0] == "groupdel":
            del self.groups[argv[1]]
        elif argv[0].endswith("python3"):
            return f"{self.python_version} x86_64\n", "", 0
        elif argv == ["nginx", "-v"]:
            return "", "nginx version: nginx/1.22.1\n", 0
        elif argv[:2] == ["nginx", "-t"] and not self.nginx_valid:
            return "", "nginx: [emerg] unknown directive in /etc/nginx/conf.d/other.conf:1\n", 1
        elif argv[:2] == ["nginx", "-T"]:
            return (
                ("", "nginx: configuration test failed\n", 1)
                if self.nginx_dump is None
                else (self.nginx_dump, "", 0)
            )
        elif argv[0] == "systemctl":
            return self._systemctl(argv[1:]), "", 0
        return "", "", 0

    def _systemctl(self, args: list[str]) -> str:
        units = [a for a in args if a.endswith((".service", ".socket", ".path", ".timer"))]
        if args[0] == "--version":
            return "systemd 252 (252.22-1~deb12u1)\n"
        if args[0] == "show":  # loaded from /etc/systemd/system when the file is there
            unit = units[-1]
            path = f"/etc/systemd/system/{unit}"
            loaded = self.path(path).is_file() or unit == "nginx.service"
            state = "active" if unit in self.active else "inactive"
            return (
                f"LoadState=loaded\nFragmentPath={path}\nActiveState={state}\n"
                if loaded
                else "LoadState=not-found\n"
            )
        if args[0] in ("start", "restart"):
            self.active.update(units)
        elif args[0] == "stop" or (args[0] == "disable" and "--now" in args):
            self.active.difference_update(units)
        return ""


def make_host(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """A FakeHost with its health check (`fake_health`) and a disk that does not wait for fsync
    (durability is not what these tests decide; fsync was most of their time)."""
    host = FakeHost(root)
    fake_health(monkeypatch, host)
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    return host


def fake_health(monkeypatch: pytest.MonkeyPatch, host: FakeHost) -> None:
    """The health check answers 200 while `host.serving` and the socket or service unit is active
    (a connection to an active socket starts a stopped service)."""
    from integrator.host import activate, release_facts, repair, units

    def check_serving(ctx: Any, deadline_s: float = 20.0) -> Probe:
        slot = units.serving_slot(host, ctx.layout)  # the one nginx routes to: the site on disk
        up = host.serving and slot is not None and bool(set(slot.units) & host.active)  # the socket starts it
        return Probe(up, 200 if up else 0, "" if up else "connection refused")

    def wait_socket_healthy(spec: Any, socket_path: str, deadline_s: float = 20.0) -> Probe:
        layout = Layout.for_spec(spec, "debian")
        slot = next(s for s in layout.slots if str(host.path(s.socket_path)) == socket_path)
        up = host.serving and bool(set(slot.units) & host.active)
        return Probe(up, 200 if up else 0, "" if up else "connection refused")

    for module in (activate, release_facts, repair):
        monkeypatch.setattr(module, "check_serving", check_serving)
    monkeypatch.setattr(activate, "wait_socket_healthy", wait_socket_healthy)
    monkeypatch.setattr(activate, "time", _NoPause())


class _NoPause:
    """activate's pause before its second health check: nothing to wait for on a fake host."""

    def sleep(self, seconds: float) -> None:
        pass


# --- a deployed service, made with the deploy's own steps ---------------------------------------


def ctx_for(host: FakeHost, spec: ServiceSpec = SPEC) -> HostContext:
    facts = probe_host(host)
    return HostContext(host, facts, spec, Layout.for_spec(spec, facts.distro))


def secrets_of(host: FakeHost) -> dict[str, Path]:
    """The `--secret api_key=FILE` of every deploy here (the file is next to the root)."""
    secret = host.root.parent / "api_key"
    if not secret.exists():
        secret.write_text("s3cret\n")
    return {"api_key": secret}


def bundle(spec: ServiceSpec = SPEC, sha: str = SHA_A) -> BundleInfo:
    return BundleInfo(Path(f"/nowhere/{spec.name}.pyz"), sha, spec, None)


def deployed(
    host: FakeHost, spec: ServiceSpec = SPEC, sha: str = SHA_A, rid: str = RID, outcome: str = OK
) -> HostContext:
    """Apply a deploy of `spec` as release `rid` as deploy_local does (reserve, user, record, TLS,
    secrets, `activate`, claim), except that the release holds only its spec and a link to a venv stub."""
    ctx = ctx_for(host, spec)
    layout = ctx.layout
    writer = FileWriter(host)
    ownership.reserve(host, layout)
    ensure_user(host, layout)
    for path, mode in tree_dirs(layout):
        writer.ensure_dir(path, mode)
    release = host.path(layout.release(rid))
    (release / "payload").mkdir(parents=True)
    (release / "payload/spec.json").write_text(json.dumps(spec.to_dict()))
    venv = host.path(layout.shared_venv(f"stub-{rid}"))  # linked as venvs.ensure_venv links it
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {host.python_version}\n")
    (venv / "bin/python").write_text("#!/bin/sh\n")
    (venv / "bin/python").chmod(0o755)
    (venv / venvs.MARKER).write_text("{}\n")
    os.symlink(f"../../venvs/stub-{rid}", host.path(layout.venv(rid)))
    record = ReleaseRecord(rid, "2026-01-01T00:00:00Z", "me", sha, spec.version, host.python_version, outcome)
    releases.save_records(writer, layout, releases.upsert(releases.load_records(host, layout), record))
    ensure_tls(host, writer, spec, layout, ctx.facts.hostname)
    install_secrets(writer, spec, layout, secrets_of(host))
    assert activate(ctx, writer, activation_for(ctx, rid), previous=None).ok
    ownership.claim(host, layout)
    return ctx
