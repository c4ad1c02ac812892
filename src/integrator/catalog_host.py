"""The verbs that run on a host, one entry each (HOST-SIDE: a bundle builds its parser from it).

Each opens at all three doors (`integrator`, a bundle's own command line, the host tool; `verify`
only at the first two): `host` names its function in host/verbs.py, `cli` the operator's in
targets/commands.py, which runs it here or through the host tool with the argv
`verbtable.tool_argv` builds. Adding a verb: one `Verb(...)` here (or, for the build machine
only, in catalog.py) and its handlers; see docs/architecture.md, "Verbs".
"""

from __future__ import annotations

from .host.journal import PROCESS_HELP, SOURCE_HELP, SOURCES
from .verbtable import BUNDLE, CLI, HOST_DOORS, TOOL, Opt, Verb

SIGNERS = Opt(
    ("--allowed-signers",),
    "require a valid signature by a key in FILE (lines: integrator ssh-ed25519 AAAA...)",
    kind="path",
    metavar="FILE",
)
# checked by the integrator the operator runs, on the copy it then sends with its --sha256
DEPLOY_SIGNERS = Opt(
    SIGNERS.flags,
    "refuse the bundle unless signed by a key in FILE (checked first, on the very bytes then deployed)",
    kind="path",
    metavar="FILE",
    send=False,
)
BUNDLE_FILE = Opt(("bundle",), "the bundle (.pyz); in a bundle, the bundle itself", kind="path", upload=True)

_TARGETS = "integrator.targets.commands:"
_HOST = "integrator.host.verbs:"

FLEET_HOST_VERBS = (
    Verb(
        "lb",
        "a fleet's load balancer on this host: the site routes to --backend hosts",
        "Write this bundle's site as a fleet's load balancer: the app hosts over HTTPS as upstream "
        "(--down: drained, after in-flight requests end); nginx is reloaded only on a change.",
        host=_HOST + "lb",
        doors=(BUNDLE,),
        own_bundle="bundle",
        opts=(
            Opt(("--backend",), "an app host (repeat)", kind="list", metavar="ADDRESS", dest="backends"),
            Opt(("--down",), "a backend drained (repeat)", kind="list", metavar="ADDRESS"),
            Opt(
                ("--drain-timeout",),
                "wait for in-flight requests (default: 30)",
                kind="float",
                default=30.0,
                metavar="S",
            ),
            Opt(("--plan",), "show what would change and change nothing", kind="flag", dest="plan_only"),
        ),
    ),
    Verb(
        "probe",
        "health-check one app host directly, as a load balancer reaches it",
        "GET this bundle's health path from one app host directly (SNI and Host: the service's name).",
        host=_HOST + "probe",
        doors=(BUNDLE,),
        own_bundle="bundle",
        opts=(Opt(("address",), "the app host's address"),),
    ),
)

_ON_HOSTS = (
    Verb(
        "verify",
        "check a bundle's manifest and every hash",
        "Verify a bundle: every file listed and hashed, nothing added, no path escaping it.",
        cli="integrator.bundle.commands:verify",
        host=_HOST + "verify",
        opts=(BUNDLE_FILE, SIGNERS),
        doors=(CLI, BUNDLE),
        own_bundle="bundle",
    ),
    Verb(
        "deploy",
        "install a bundle on a host, health-gated",
        "Deploy: verify, unpack a release, build its venv offline, write units and site, start, "
        "health-check through nginx over HTTPS, then switch `current`; on failure roll back.",
        cli=_TARGETS + "deploy",
        host=_HOST + "deploy_here",
        opts=(
            BUNDLE_FILE,
            Opt(("--plan",), "show what would change and change nothing", kind="flag", dest="plan_only"),
            DEPLOY_SIGNERS,
            Opt(
                ("--sha256",),
                "refuse the bundle unless its sha256 is HEX (as `integrator bundle` printed it)",
                metavar="HEX",
            ),
            Opt(
                ("--secret",),
                "supply a secret named in service.toml from a file (repeatable)",
                kind="secrets",
                metavar="NAME=FILE",
                dest="secrets",
                convert="integrator.host.secrets:parse_secret_args",
            ),
            Opt(
                ("--release-id",),
                "the new release's id (a fleet's, chosen once for every host)",
                metavar="ID",
            ),
        ),
        doors=HOST_DOORS,
        own_bundle="bundle",
        takes="integrator.host.deploy_options:DeployOptions",
    ),
    Verb(
        "status",
        "show a service's state",
        "Show the service's state: release serving, unit and socket state, last health check.",
        cli=_TARGETS + "status",
        host=_HOST + "status",
        service="any",
        doors=HOST_DOORS,
    ),
    Verb(
        "list",
        "list the services on a host",
        "List the services integrator manages on the host, with their versions and current releases.",
        cli=_TARGETS + "list_services",
        host=_HOST + "list_services",
        doors=HOST_DOORS,
    ),
    Verb(
        "releases",
        "list a service's releases",
        "List one service's releases: id, version, outcome, when and by whom; * marks the current one.",
        cli=_TARGETS + "releases",
        host=_HOST + "releases",
        service="one",
        doors=HOST_DOORS,
    ),
    Verb(
        "logs",
        "show a service's journal",
        "Show the service's journal and its nginx site's lines, in time order (journald is the truth).",
        cli=_TARGETS + "logs",
        host=_HOST + "logs",
        service="one",
        doors=HOST_DOORS,
        opts=(
            Opt(("-f", "--follow"), "keep printing new lines", kind="flag"),
            Opt(("--since",), "journalctl --since, e.g. '1 hour ago' or '2026-01-01 10:00'"),
            Opt(("-n", "--lines"), "how many lines (default: 100)", kind="int", default=100),
            Opt(("--source",), SOURCE_HELP, kind="choice", choices=SOURCES, default="all"),
            Opt(("--process",), PROCESS_HELP, metavar="X"),
        ),
    ),
    Verb(
        "run",
        "run a command as the service would: run NAME -- CMD...",
        "Run a one-off command (a console, a management command) in a transient unit with the serving "
        "release's venv, environment, credentials, user and sandboxing; a bare program name is looked "
        "up in the venv first. Interactive with a terminal; without one its output also goes to the "
        "host's journal (journalctl -t NAME-run). The command's exit code is integrator's.",
        cli=_TARGETS + "run",
        host=_HOST + "run",
        service="one",
        doors=(CLI, TOOL),
        opts=(
            Opt(
                ("command",),
                "the command and its arguments (after --), never through a shell",
                kind="argv",
            ),
        ),
    ),
    Verb(
        "config",
        "show or change a service's environment on a host, without a new release",
        "config NAME: the release's [env] (the base), this host's overrides and what the service gets "
        "(secret-looking values hidden). config set NAME KEY=VALUE... / config unset NAME KEY...: "
        "written to a systemd drop-in integrator owns, kept across deploys, rollbacks and reboots, "
        "applied with a health-gated restart (on failure the previous drop-in comes back), recorded.",
        cli=_TARGETS + "config",
        host=_HOST + "config",
        doors=HOST_DOORS,
        opts=(Opt(("words",), "NAME | set NAME KEY=VALUE... | unset NAME KEY...", kind="words"),),
    ),
    Verb(
        "scale",
        "set a service's gunicorn workers and threads on a host: scale NAME workers=N threads=M",
        "Set gunicorn's workers and/or threads on this host (within [server]'s bounds) without a new "
        "release: a drop-in kept across deploys, applied with a health-gated restart, recorded.",
        cli=_TARGETS + "scale",
        host=_HOST + "scale",
        service="one",
        doors=HOST_DOORS,
        opts=(Opt(("settings",), "workers=N and/or threads=M", kind="words"),),
    ),
    Verb(
        "secret",
        "set or remove a service's secret on a host: secret set NAME KEY --from FILE / secret rm NAME KEY",
        "secret set NAME KEY --from FILE: the credential KEY (a root-only file, handed over with "
        "LoadCredential=) gets FILE's content (a regular file, not a symlink, not writable by others); "
        "a KEY the release does not name is added on this host. secret rm NAME KEY removes one added "
        "here. Both restart health-gated; the previous credential comes back on failure.",
        cli=_TARGETS + "secret",
        host=_HOST + "secret",
        doors=HOST_DOORS,
        opts=(
            Opt(("words",), "set NAME KEY | rm NAME KEY", kind="words"),
            Opt(
                ("--from",),
                "the file holding the secret (set)",
                kind="path",
                upload=True,
                dest="source",
                metavar="FILE",
            ),
        ),
    ),
    Verb(
        "rollback",
        "go back to the previous good release",
        "Switch back to the previous good release (or --to ID), health-gated like a deploy.",
        cli=_TARGETS + "rollback",
        host=_HOST + "rollback",
        service="one",
        doors=HOST_DOORS,
        opts=(Opt(("--to",), "a release id from `integrator releases NAME`", metavar="ID"),),
    ),
    Verb(
        "uninstall",
        "remove a service from a host",
        "Remove units, site, socket, user and releases; nginx stays valid and is reloaded.",
        cli=_TARGETS + "uninstall",
        host=_HOST + "uninstall",
        service="one",
        doors=HOST_DOORS,
        opts=(Opt(("--purge",), "also remove its data, secrets and certificates", kind="flag"),),
    ),
    Verb(
        "doctor",
        "check a host (and a service) for known problems",
        "Check the host (and the service): tools, nginx -t, units, venv vs host Python, SELinux; "
        "in a bundle also whether this bundle fits the host.",
        cli=_TARGETS + "doctor",
        host=_HOST + "doctor",
        service="any",
        doors=HOST_DOORS,
        own_bundle="bundle",
    ),
)

HOST_VERBS: tuple[Verb, ...] = (*_ON_HOSTS, *FLEET_HOST_VERBS)
