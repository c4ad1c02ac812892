"""Apply (and on purge remove) the SELinux file labels a service needs, where SELinux is on.

The rules themselves are rendered in `render.selinux`; this module only probes which are
already defined (`semanage fcontext -l -C`: local customisations) and runs the missing
`semanage` and `restorecon` steps, so a re-deploy changes nothing. Labels are applied while
SELinux is permissive too: switching to enforcing later must not break the service.
"""

from __future__ import annotations

import re

from ..errors import EnvironmentProblem
from ..layout import Layout
from ..render.selinux import all_file_contexts, file_contexts, restorecon_argv, semanage_argv
from ..spec import ServiceSpec
from .facts import SELINUX_ENFORCE, parse_selinux_enforce
from .system import System

SEMANAGE_PACKAGE = "policycoreutils-python-utils"
LOCAL_RULE = re.compile(r"^(?P<pattern>\S+)\s+.*?:object_r:(?P<type>[a-z0-9_]+):")


def selinux_enabled(system: System) -> bool:
    """SELinux is on (enforcing or permissive) when selinuxfs is mounted."""
    return system.path(SELINUX_ENFORCE).exists()


def parse_local_rules(text: str) -> dict[str, str]:
    """`semanage fcontext -l -C` lines (`PATTERN  all files  system_u:object_r:TYPE:s0`)."""
    rules: dict[str, str] = {}
    for line in text.splitlines():
        match = LOCAL_RULE.match(line)
        if match:
            rules[match["pattern"]] = match["type"]
    return rules


def apply_labels(system: System, spec: ServiceSpec, layout: Layout) -> list[str]:
    """Define each rule that is missing or different, then relabel; returns what it ran."""
    if not selinux_enabled(system):
        return []
    existing = _local_rules(system)
    ran: list[str] = []
    for rule in file_contexts(spec, layout):
        if existing.get(rule.pattern) != rule.type:
            argv = semanage_argv(rule, exists=rule.pattern in existing)
            system.run(argv)
            ran.append(" ".join(argv))
        if system.path(rule.top).exists():
            system.run(restorecon_argv(rule))
            ran.append(" ".join(restorecon_argv(rule)))
    return ran


def remove_labels(system: System, layout: Layout) -> list[str]:
    """`uninstall --purge`: delete the rules this service added (its files are gone already)."""
    if not selinux_enabled(system):
        return []
    existing = _local_rules(system)
    rules = [r for r in all_file_contexts(layout) if r.pattern in existing]
    for rule in rules:
        system.run(["semanage", "fcontext", "-d", rule.pattern])
    return [f"semanage fcontext -d {r.pattern}" for r in rules]


def _local_rules(system: System) -> dict[str, str]:
    try:
        proc = system.run(["semanage", "fcontext", "-l", "-C"])
    except EnvironmentProblem:
        raise EnvironmentProblem(
            f"SELinux is enabled but semanage is missing: install {SEMANAGE_PACKAGE}"
        ) from None
    return parse_local_rules(proc.stdout)


def selinux_mode(system: System) -> str:
    """enforcing, permissive, or off: what `doctor` reports."""
    if not selinux_enabled(system):
        return "off"
    return "enforcing" if parse_selinux_enforce(system.path(SELINUX_ENFORCE).read_text()) else "permissive"


def missing_labels(system: System, spec: ServiceSpec, layout: Layout) -> list[str]:
    """Rules this service needs that the host does not define (or defines with another type)."""
    if not selinux_enabled(system):
        return []
    existing = _local_rules(system)
    return [
        f"SELinux: {rule.pattern} should be {rule.type} ({rule.why}); deploy again to apply it"
        for rule in file_contexts(spec, layout)
        if existing.get(rule.pattern) != rule.type
    ]
