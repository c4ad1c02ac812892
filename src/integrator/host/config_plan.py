"""`config set/unset`, `scale` and `secret set/rm` decided, pure: facts + request -> ConfigPlan.

Nothing here reads or changes a host (host/config.py probes and applies): the same facts and
request give the same plan, so every case is a table row (tests/test_config_plan.py). Every
value is checked whole here, on the host, whatever the operator's side checked: a name must
match [env]'s pattern, a value hold no control character (a newline would end the line in
the drop-in), workers and threads stay in the bounds service.toml declares (spec/model.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from ..errors import SpecError, UsageError
from ..layout import Layout
from ..render.dropin import GUNICORN_ENV, HostConfig, dropin_paths, dropin_text
from ..spec import ServiceSpec
from ..spec.model import Server
from ..spec.text import ENV_NAME_RE, ENV_VALUE_MAX, RESERVED_ENV, check_secret_name, check_text

# Names whose values are never printed nor recorded (matched anywhere in the name, any case).
SECRET_LOOKING = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|DSN|COOKIE|SALT|SIGNATURE", re.I)
HIDDEN = "(hidden)"
SCALE_KEYS = ("workers", "threads")
MAX_OVERRIDES = 256
SECRET_MAX_BYTES = 1 << 20  # systemd refuses larger credentials
_WHO = re.compile(r"[^A-Za-z0-9._@+-]")


@dataclass(frozen=True)
class ConfigRequest:
    """One change asked for: variables set or unset, gunicorn's sizes, a credential set (name,
    sha256 of its content: the plan never sees a secret) or removed."""

    set_env: tuple[tuple[str, str], ...] = ()
    unset: tuple[str, ...] = ()
    workers: int | None = None
    threads: int | None = None
    secret_set: tuple[str, str] | None = None
    secret_rm: str | None = None


@dataclass(frozen=True)
class ConfigFacts:
    """What a change is decided from: the serving release's spec, the configuration recorded on
    the host, the drop-ins as found, and the credential files there (digests only)."""

    layout: Layout
    release_id: str
    spec: ServiceSpec
    config: HostConfig
    dropins: Mapping[PurePosixPath, bytes | None]
    credentials: Mapping[str, str]  # name -> sha256


@dataclass(frozen=True)
class ConfigPlan:
    """A change decided: what changed (secret-looking values hidden), the new configuration, the
    drop-ins to write (None: remove) and the credential to write or remove; restart if any."""

    service: str
    release_id: str
    changes: tuple[str, ...]
    config: HostConfig
    dropins: tuple[tuple[PurePosixPath, str | None], ...]
    secret: tuple[str, str] | None = None  # (name, sha256) written
    remove_secret: str | None = None

    @property
    def restart(self) -> bool:
        return bool(self.dropins or self.secret or self.remove_secret)


def looks_secret(key: str) -> bool:
    return SECRET_LOOKING.search(key) is not None


def shown(key: str, value: str) -> str:
    """A value as output and records may show it."""
    return HIDDEN if looks_secret(key) else repr(value)


# --- the words of the command lines -----------------------------------------------------------


def config_words(words: Sequence[str]) -> tuple[str, str, list[str]]:
    """`NAME` (show), `set NAME KEY=VALUE...`, `unset NAME KEY...` -> (action, name, items)."""
    if words and words[0] in ("set", "unset"):
        if len(words) < 3:
            raise UsageError(f"config {words[0]} NAME {'KEY=VALUE' if words[0] == 'set' else 'KEY'}...: "
                             "give the service and at least one item")  # fmt: skip
        return words[0], words[1], list(words[2:])
    if len(words) != 1:
        raise UsageError("config NAME | config set NAME KEY=VALUE... | config unset NAME KEY...")
    return "show", words[0], []


def secret_words(words: Sequence[str]) -> tuple[str, str, str]:
    """`set NAME KEY` or `rm NAME KEY` -> (action, name, key)."""
    if len(words) != 3 or words[0] not in ("set", "rm"):
        raise UsageError("secret set NAME KEY --from FILE | secret rm NAME KEY")
    return words[0], words[1], check_key_name(words[2])


def check_key_name(key: str) -> str:
    try:
        return check_secret_name(key, "secret")
    except SpecError as exc:
        raise UsageError(exc.message) from None


def scale_request(items: Sequence[str]) -> ConfigRequest:
    """`workers=N threads=M` (either or both), in the bounds [server] declares."""
    sizes: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in SCALE_KEYS or not value.isdigit() or len(value) > 9:
            raise UsageError(f"scale: {item[:40]!r}: give workers=N and/or threads=M (whole numbers)")
        sizes[key] = check_bound(key, int(value))
    if not sizes:
        raise UsageError("scale NAME workers=N threads=M: give at least one")
    return ConfigRequest(workers=sizes.get("workers"), threads=sizes.get("threads"))


def check_bound(key: str, value: int) -> int:
    """Within the low/high of [server] KEY, as service.toml is checked."""
    meta = next(f.metadata for f in dataclasses.fields(Server) if f.name == key)
    if not meta["low"] <= value <= meta["high"]:
        raise UsageError(
            f"scale: {key}={value} is out of range: [server] {key} is {meta['low']}..{meta['high']}"
        )
    return value


def check_assignment(item: str) -> tuple[str, str]:
    """KEY=VALUE, each checked whole: a name [env] allows, a value without control characters."""
    key, sep, value = item.partition("=")
    if not sep:
        raise UsageError(f"config set: {item[:40]!r} is not KEY=VALUE")
    return check_env_name(key), check_env_value(key, value)


def check_env_name(key: str) -> str:
    if not ENV_NAME_RE.fullmatch(key):
        raise UsageError(
            f"config: {key[:40]!r} is not a valid variable name (letters, digits, _; not a digit first)"
        )
    if key in RESERVED_ENV or key == GUNICORN_ENV:
        hint = " (use `integrator scale`)" if key == GUNICORN_ENV else ""
        raise UsageError(f"config: {key} is set by integrator itself{hint}")
    return key


def check_env_value(key: str, value: str) -> str:
    try:
        check_text(value, f"config set {key}:")
    except SpecError:
        raise UsageError(f"config set {key}: the value has a control character (a newline?): "
                         "use printable text, or a file with `integrator secret set`") from None  # fmt: skip
    if len(value) > ENV_VALUE_MAX:
        raise UsageError(f"config set {key}: the value is longer than {ENV_VALUE_MAX} characters")
    return value


def check_config(config: HostConfig) -> HostConfig:
    """A recorded configuration checked again before it is used (the file may have been edited)."""
    for key, value in config.env:
        check_env_name(key)
        check_env_value(key, value)
    for key, size in (("workers", config.workers), ("threads", config.threads)):
        if size is not None:
            check_bound(key, size)
    for name in config.secrets:
        check_key_name(name)
    return config


def who(name: str) -> str:
    """SUDO_USER/USER as a drop-in comment and a record may hold it."""
    return _WHO.sub("?", name)[:64] or "?"


# --- the plan ---------------------------------------------------------------------------------


def plan_config(facts: ConfigFacts, request: ConfigRequest, by: str, at: str) -> ConfigPlan:
    """The new configuration, what changed, the drop-ins that differ from it and the credential
    to write or remove. Nothing changed and drop-ins as they should be: no restart."""
    old, spec = facts.config, facts.spec
    env = dict(old.env)
    changes: list[str] = []
    for key, value in request.set_env:
        check_env_name(key)
        if env.get(key) != check_env_value(key, value):
            env[key] = value
            changes.append(f"set {key}={shown(key, value)}")
    for key in request.unset:
        if env.pop(check_env_name(key), None) is not None:
            was = dict(spec.env.vars).get(key)
            back = f"[env]'s {shown(key, was)}" if was is not None else "not set"
            changes.append(f"unset {key} (back to {back})")
    if len(env) > MAX_OVERRIDES:
        raise UsageError(f"config set: at most {MAX_OVERRIDES} variables on a host")
    sizes: dict[str, int | None] = {}
    for key, size, before, base in (("workers", request.workers, old.workers, spec.server.workers),
                                 ("threads", request.threads, old.threads, spec.server.threads)):  # fmt: skip
        sizes[key] = before
        if size is not None and check_bound(key, size) != before:
            sizes[key] = size
            changes.append(f"{key} {before or base} -> {size}")
    secrets, write, remove = set(old.secrets), None, None
    if request.secret_set is not None:
        name, digest = request.secret_set
        check_key_name(name)
        if facts.credentials.get(name) != digest:
            write = (name, digest)
            changes.append(f"secret {name} set")
        if name not in spec.secrets.files and name not in secrets:
            secrets.add(name)
            if write is None:
                changes.append(f"secret {name} loaded")
    if request.secret_rm is not None:
        name = check_key_name(request.secret_rm)
        if name in spec.secrets.files:
            raise UsageError(f"secret rm {name}: release {facts.release_id} needs it ([secrets] files); "
                             "deploy a release without it, or replace it with `secret set`")  # fmt: skip
        if name in secrets:  # else: not here (any more), nothing to do
            secrets.discard(name)
            remove = name
            changes.append(f"secret {name} removed")
    new = HostConfig(tuple(sorted(env.items())), sizes["workers"], sizes["threads"], tuple(sorted(secrets)))
    changed = not new.same_values(old) or write is not None
    new = replace(new, by=who(by), at=at) if changed else replace(new, by=old.by, at=old.at)
    return ConfigPlan(
        spec.name, facts.release_id, tuple(changes), new, wanted_dropins(facts, new), write, remove
    )


def wanted_dropins(facts: ConfigFacts, config: HostConfig) -> tuple[tuple[PurePosixPath, str | None], ...]:
    """Each drop-in whose content differs from what `config` renders (None: it should not exist)."""
    own = set(facts.spec.secrets.files)
    host_secrets = tuple(s for s in config.secrets if s not in own)
    out = []
    for path in dropin_paths(facts.layout):
        text = None if config.empty else dropin_text(config, facts.layout, path, host_secrets)
        if facts.dropins.get(path) != (None if text is None else text.encode()):
            out.append((path, text))
    return tuple(out)


def effective(spec: ServiceSpec, config: HostConfig) -> list[dict[str, object]]:
    """Every variable: the release's [env] value, this host's, and the one the service gets
    (secret-looking values hidden)."""
    base, host = dict(spec.env.vars), dict(config.env)
    rows: list[dict[str, object]] = []
    for key in sorted({*base, *host}):
        value = host.get(key, base.get(key))
        hide = looks_secret(key)
        rows.append({
            "key": key,
            "base": None if key not in base else HIDDEN if hide else base[key],
            "host": None if key not in host else HIDDEN if hide else host[key],
            "value": HIDDEN if hide else value,
            "from": "host" if key in host else "[env]",
        })  # fmt: skip
    return rows
