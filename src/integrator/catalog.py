"""Every verb of `integrator`, in the order `--help` lists them: the build machine's, declared
here, and those that run on a host, declared in catalog_host.py (which a bundle carries).

Adding a verb is one `Verb(...)` in one of the two and its handler; see docs/architecture.md,
"Verbs". Standard library only, so `integrator --help` loads nothing else.
"""

from __future__ import annotations

from .catalog_host import HOST_VERBS
from .verbtable import Opt, Verb

DISTRO = Opt(
    ("--distro",),
    "host family (default: debian)",
    kind="choice",
    choices=("debian", "rhel"),
    default="debian",
)
SERVICE_DIR = Opt(("dir",), "service directory (default: .)", kind="path", optional=True, default=".")
_TEMPLATE = "integrator.template.commands:"
_SANDBOX = "integrator.sandbox.commands:"

SOURCES = (
    Verb(
        "new",
        "create a Flask service from the template",
        "Create a new service from the Flask template: app factory, /healthz, tests, service.toml.",
        cli=_TEMPLATE + "new",
        opts=(
            Opt(("name",), "service name: a-z, 0-9, _ (unit, user and package name)"),
            Opt(
                ("dir",), "where to create it (default: ./NAME)", kind="path", optional=True, dest="directory"
            ),
        ),
    ),
    Verb(
        "clone",
        "copy a service and rename it everywhere",
        "Copy a service and rename it in package, spec, tests, docs, unit and socket names.",
        cli=_TEMPLATE + "clone",
        opts=(
            Opt(("src",), "directory of the service to copy", kind="path"),
            Opt(("name",), "the new service's name", dest="newname"),
            Opt(("dir",), "where to put it (default: ./NAME)", kind="path", optional=True, dest="directory"),
        ),
    ),
    Verb(
        "init",
        "adopt an existing Flask/WSGI project",
        "Write service.toml for an existing Flask/WSGI project, finding its app and requirements.",
        cli=_TEMPLATE + "init",
        opts=(
            Opt(
                ("dir",),
                "the project (default: .)",
                kind="path",
                optional=True,
                default=".",
                dest="directory",
            ),
            Opt(("--name",), "service name (default: derived from the project)"),
            Opt(("--entry",), "WSGI entry, e.g. 'app:app' or 'pkg:create_app()' (default: found)"),
            Opt(
                ("--no-probe",),
                "do not install the app and its dependencies into a throwaway venv to ask it for its "
                "health path when the project has no venv of its own (the source's routes are read instead)",
                kind="flag",
                default=True,
                dest="install",
            ),
        ),
    ),
    Verb(
        "render",
        "write the unit, socket, gunicorn and nginx files",
        "Render every file a deploy writes, from service.toml alone: nothing on any host is read.",
        cli="integrator.render.commands:render",
        opts=(
            SERVICE_DIR,
            DISTRO,
            Opt(("--out",), "write the files below this directory (default: print them)", kind="path"),
            Opt(
                ("--release",),
                "release id the unit points at (default: RELEASE)",
                default="RELEASE",
                dest="release_id",
            ),
        ),
    ),
    Verb(
        "plan",
        "show every file a deploy would write, as diffs",
        "List the files a deploy would create or change, with unified diffs against the files below "
        "ROOT; changes nothing (on a host: `deploy --plan`).",
        cli="integrator.plan:plan_command",
        opts=(
            Opt(
                ("source",),
                "service directory or bundle (default: .)",
                kind="path",
                optional=True,
                default=".",
            ),
            DISTRO,
            Opt(("--root",), "compare against files below ROOT (default: /)", kind="path", default="/"),
        ),
    ),
    Verb(
        "bundle",
        "build one offline, self-deploying .pyz",
        "Build NAME-VERSION.pyz: app wheel, wheelhouse per target, hash lock, host installer, manifest.",
        cli="integrator.bundle.commands:bundle",
        opts=(
            SERVICE_DIR,
            Opt(
                ("--python",),
                "target Pythons, comma separated (default: those of 3.9,3.11,3.12 the project's "
                "requires-python admits)",
                dest="pythons",
                convert="integrator.verbtable:csv",
            ),
            Opt(
                ("--platform",),
                "target machines, comma separated: x86_64, aarch64 (default: x86_64)",
                default="x86_64",
                dest="platforms",
                convert="integrator.verbtable:csv",
            ),
            Opt(("-o", "--output"), "output directory (default: ./dist)", kind="path", default="dist"),
            Opt(
                ("--sign",),
                "sign with this ssh private key (ssh-keygen -Y sign)",
                kind="path",
                metavar="KEY",
                dest="sign_key",
            ),
            Opt(
                ("--no-preflight",),
                "do not install, import and ask the app for its health path before writing the bundle "
                "(for apps that need their secrets or a database to answer; the host's health check "
                "stays the gate)",
                kind="flag",
                default=True,
                dest="preflight",
            ),
        ),
    ),
)


def _box(name: str, help_text: str, function: str, *opts: Opt) -> Verb:
    return Verb(
        name, help_text, help_text[0].upper() + help_text[1:] + ".", cli=_SANDBOX + function, opts=opts
    )


_BOX = Opt(("name",), "the sandbox host's name")
SANDBOX = Verb(
    "sandbox",
    "disposable real-systemd Debian hosts for trying deploys",
    "Disposable Debian 12 hosts booted with a real systemd (systemd-nspawn), each in its own "
    "network namespace, reachable from this machine at its own address. Needs root.",
    verbs=(
        _box("create", "build (once, cached) and boot a host", "create_cmd", _BOX),
        _box(
            "exec",
            "run a command inside: sandbox exec NAME -- CMD...",
            "exec_cmd",
            _BOX,
            Opt(
                ("argv",),
                "the command and its arguments",
                kind="rest",
                convert="integrator.verbtable:strip_dashdash",
            ),
        ),
        _box(
            "copy",
            "copy files in or out: copy SRC NAME:DEST, or copy NAME:SRC DEST",
            "copy_cmd",
            Opt(("src",), "a local path, or NAME:PATH inside a host"),
            Opt(("dest",), "a local path, or NAME:PATH inside a host"),
        ),
        _box("list", "list hosts", "list_cmd"),
        _box("shell", "an interactive shell inside", "shell_cmd", _BOX),
        _box("reboot", "reboot a host; it comes back with the same files", "reboot_cmd", _BOX),
        _box(
            "destroy",
            "power off and remove a host, leaving nothing behind",
            "destroy_cmd",
            Opt(("name",), "the sandbox host's name", optional=True),
            Opt(("--all",), "every host", kind="flag", dest="all_hosts"),
        ),
    ),
)

_FLEET = "integrator.fleet.cli:"
_PYZ = Opt(("bundle",), "the service's NAME-VERSION.pyz on this controller", kind="path")
_INVENTORY = Opt(("-i", "--inventory"), "inventory (docs/fleet.md)", kind="path", required=True)


def _fleet(name: str, help_text: str, handler: str, *opts: Opt) -> Verb:
    return Verb(name, help_text, help_text, cli=handler, opts=(_PYZ, _INVENTORY, *opts))


FLEET = Verb(
    "fleet",
    "roll a bundle across app hosts behind an nginx load balancer (Ansible)",
    "Roll a bundle across the app hosts of an Ansible inventory, one host at a time, behind an "
    "nginx load balancer written by the bundle's own `lb` verb (docs/fleet.md).",
    verbs=(
        _fleet(
            "deploy",
            "preflight, then one host at a time; a failure rolls the fleet back",
            "integrator.fleet:deploy",
            Opt(("--check",), "same as `fleet plan`", kind="flag"),
            Opt(("--serial",), "hosts per batch (default 1)", kind="int", metavar="N"),
        ),
        _fleet("plan", "ansible-playbook --check: a plan on each host, nothing changed", _FLEET + "plan"),
        _fleet(
            "rollback",
            "every app host back to the fleet's previous release (or --to ID)",
            _FLEET + "rollback",
            Opt(("--to",), "a release id (default: the last run's previous)", metavar="ID"),
        ),
        _fleet("status", "each app host's release and health, the fleet's last run", _FLEET + "status"),
        _fleet("unlock", "remove a fleet lock left by a run that is gone", _FLEET + "unlock"),
        Verb(
            "collection",
            "build the integrator.fleet collection as an offline tarball",
            "Build the integrator.fleet collection as an offline tarball.",
            cli="integrator.fleet:build_collection",
            opts=(Opt(("--out",), "directory for the tarball (default: dist)", kind="path", default="dist"),),
        ),
    ),
)

VERBS: tuple[Verb, ...] = (*SOURCES, *HOST_VERBS, SANDBOX, FLEET)
