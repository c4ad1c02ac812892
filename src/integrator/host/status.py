"""Read-only commands on the host: status, list, doctor (logs: journal.py). journald and the release record
are the truth; nothing here changes the host.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from ..errors import EXIT_FAILED, HostError, SpecError
from ..layout import STATE_ROOT, Layout, profile
from ..result import Result
from ..slots import SLOTS
from ..spec import check_service_name
from . import bundleio, doctor, releases, units
from .facts import HostFacts, current_release, host_distro, unit_state, venv_usable
from .health import wait_healthy
from .processes import process_lines, process_states
from .repair import interruption_report
from .selinux import missing_labels, selinux_mode
from .system import System
from .tls import tls_files


def layout_for(system: System, name: str) -> Layout:
    """The layout of a service named on a command line (maybe a hand-made remote one): the
    name is checked before anything on the host is read."""
    check_service_name(name)
    return Layout(name, profile(host_distro(system)))


def managed_services(system: System) -> list[Layout]:
    """Services with a release tree and a record on this host (what `list` shows)."""
    state_root = system.path(STATE_ROOT)
    if not state_root.is_dir():
        return []
    names = sorted(p.name for p in state_root.iterdir() if p.is_dir() and _valid_name(p.name))
    if not names:
        return []
    distro = profile(host_distro(system))  # read once, not once per service
    return [layout for layout in (Layout(n, distro) for n in names) if system.path(layout.releases).is_dir()]


def _valid_name(name: str) -> bool:
    try:
        check_service_name(name)
    except SpecError:
        return False
    return True


def require_installed(system: System, name: str) -> Layout:
    layout = layout_for(system, name)
    if not system.path(layout.releases).is_dir():
        raise HostError(f"{name} is not deployed on this host (see `integrator list`)")
    return layout


def selected_services(system: System, name: str | None) -> list[Layout]:
    """The named service (which must be deployed), or every service integrator manages here."""
    return [require_installed(system, name)] if name is not None else managed_services(system)


# --- status -------------------------------------------------------------------------------------


def service_status(system: System, layout: Layout) -> dict[str, object]:
    """One service: serving release, unit states, restarts, a quick health probe."""
    rid = current_release(system, layout.current)
    slot = units.serving_slot(system, layout) or layout.slot(SLOTS[0])
    svc, sock = unit_state(system, slot.service_unit), unit_state(system, slot.socket_unit)
    info: dict[str, object] = {
        "service": layout.name,
        "release": rid,
        "slot": slot.name,
        "service_state": f"{svc.get('ActiveState', '?')} ({svc.get('SubState', '?')})",
        "socket_state": f"{sock.get('ActiveState', '?')} ({sock.get('SubState', '?')})",
        "main_pid": svc.get("MainPID"),
        "restarts": svc.get("NRestarts"),
        "healthy": False,
    }
    record = releases.find(releases.load_records(system, layout), rid)
    if record is not None:
        info.update(version=record.version, deployed_at=record.deployed_at, by=record.by)
    if rid is not None:
        spec = bundleio.release_spec(system, layout, rid)
        probe = wait_healthy(spec, tls_files(spec, layout).verify_against, deadline_s=3)
        info.update(healthy=probe.ok, health=probe.detail, processes=process_states(system, layout, spec))
    facts, problem = interruption_report(system, layout, rid)
    info.update(facts, problem=problem)
    info.update(host_config_status(system, layout, svc))
    return info


def host_config_status(system: System, layout: Layout, svc: dict[str, str]) -> dict[str, object]:
    """gunicorn's workers running now (the main process's children) and what this host sets
    over the release (host/config.py: `config set`, `scale`, `secret set`)."""
    from .config import summary

    pid = units.main_pid(svc)
    workers = len(units.child_pids(system, pid)) if pid else 0
    return {"workers": workers, "host_config": summary(system, layout)}


def status_local(system: System, name: str | None) -> Result:
    infos = [service_status(system, layout) for layout in selected_services(system, name)]
    result = Result(data={"services": infos})
    if not infos:
        return result.say("no services deployed by integrator on this host")
    for i in infos:
        mark = "ok" if i["healthy"] else "NOT HEALTHY"
        mark = "INTERRUPTED" if i.get("interrupted") else "INCONSISTENT" if i["problem"] else mark
        result.say(f"{i['service']}: {mark} - release {i['release']} version {i.get('version', '?')}")
        result.say(f"  service {i['service_state']}, socket {i['socket_state']}, pid {i['main_pid']}, "
                   f"{i['workers']} workers, restarts {i['restarts']}; "
                   f"health: {i.get('health', 'no current release')}")  # fmt: skip
        if i["host_config"]:
            result.say(f"  {i['host_config']}")
        deploying = i.get("deploying")
        if isinstance(deploying, dict):
            result.say(f"  deploying (pid {deploying['pid']}, step {deploying['step']})")
        result.lines += process_lines(i.get("processes", []))  # type: ignore[arg-type]
        if i["problem"]:
            result.say(f"  {i['problem']}")
    down = [p for i in infos for p in i.get("processes", []) if not p["ok"]]  # type: ignore[attr-defined]
    if down or not all(i["healthy"] and not i["problem"] for i in infos):
        result.exit_code = EXIT_FAILED
    return result


# --- list ----------------------------------------------------------------------------------------


def list_local(system: System, name: str | None) -> Result:
    if name is None:
        return _list_services(system)
    layout = require_installed(system, name)
    current = current_release(system, layout.current)
    on_disk = set(releases.release_ids(system, layout))
    records = releases.load_records(system, layout)
    result = Result(data={"service": name, "current": current, "releases": []})
    for r in records:
        mark = "*" if r.id == current else " "
        where = "" if r.id in on_disk else " (removed)"
        result.data["releases"].append({**r.__dict__, "current": r.id == current, "on_disk": r.id in on_disk})
        result.say(f"{mark} {r.id}  {r.version:10} {r.outcome:11} {r.deployed_at} by {r.by}{where}"
                   + (f": {r.message}" if r.message else ""))  # fmt: skip
    return result


def _list_services(system: System) -> Result:
    result = Result(data={"services": []})
    for layout in managed_services(system):
        rid = current_release(system, layout.current)
        record = releases.find(releases.load_records(system, layout), rid)
        version = record.version if record else "?"
        result.data["services"].append({"service": layout.name, "release": rid, "version": version})
        result.say(f"{layout.name:20} {version:10} {rid or '(no current release)'}")
    if not result.lines:
        result.say("no services deployed by integrator on this host")
    return result


# --- doctor --------------------------------------------------------------------------------------


def doctor_local(system: System, name: str | None, bundle: Path | None = None) -> Result:
    """The pre-deploy check (host/doctor.py: exits non-zero where a deploy would refuse), then per
    deployed service: units active, every release's venv vs host Python, labels, certificates."""
    if name is not None:
        check_service_name(name)  # before probing anything
    facts = doctor.probe(system, bundle)
    result = Result()
    if facts.host is not None:
        h = facts.host
        result.say(f"host: {h.pretty_name}, Python {'.'.join(map(str, h.python_version))}, "
                   f"nginx {'.'.join(map(str, h.nginx_version))}, systemd {h.systemd_version}, "
                   f"SELinux {selinux_mode(system)}")  # fmt: skip
    layouts = [] if facts.host is None else _doctor_services(system, name, facts.bundle)
    certs = []
    for layout in layouts:
        current = current_release(system, layout.current)
        check = (
            doctor.cert_check(system, bundleio.release_spec(system, layout, current), layout)
            if current
            else None
        )
        certs += [check] if check else []
    verdict = doctor.diagnose(replace(facts, certs=tuple(certs)), time.time())
    problems, notes = verdict.problems, verdict.notes
    for layout in layouts:
        assert facts.host is not None
        problems += _service_problems(system, layout, facts.host)
        notes += _stale_venvs(system, layout, facts.host)
    result.data = {"problems": problems, "notes": notes, "host": facts.host.__dict__ if facts.host else None}
    result.warnings.extend(verdict.warnings)  # on stderr, and `warnings` in --json
    result.lines.extend(f"problem: {p}" for p in problems)
    result.lines.extend(f"note: {n}" for n in notes)
    result.say("no problems found" if not problems else f"{len(problems)} problem(s) found")
    result.exit_code = EXIT_FAILED if problems else 0
    return result


def _doctor_services(system: System, name: str | None, bundle: doctor.BundleFacts | None) -> list[Layout]:
    """As `selected_services`, except that a bundle's own service need not be deployed yet."""
    if bundle is not None and name == bundle.spec.name:
        layout = layout_for(system, name)
        return [layout] if system.path(layout.releases).is_dir() else []
    return selected_services(system, name)


def _service_problems(system: System, layout: Layout, facts: HostFacts) -> list[str]:
    """Units not active, no current release, or a current venv the host's Python broke."""
    problems = [
        f"{unit} is not active (see `integrator logs {layout.name}`)"
        for unit in (units.serving_slot(system, layout) or layout.slot(SLOTS[0])).units[::-1]
        if not units.is_active(system, unit)
    ]
    current = current_release(system, layout.current)
    interrupted = interruption_report(system, layout, current)[1]
    problems += [f"{layout.name}: {interrupted}"] if interrupted else []
    if current is None or not system.path(layout.current).is_dir():
        return [*problems, f"{layout.name}: {layout.current} does not point at a release"]
    why = venv_usable(system, layout.venv(current), facts)
    if why:
        problems.append(
            f"{layout.name} release {current}: {why} (deploy the same bundle again to rebuild it)"
        )
    spec = bundleio.release_spec(system, layout, current)
    down = [f"{p['unit']} is {p['state']} (see `integrator logs {layout.name} --process {p['name']}`)"
            for p in process_states(system, layout, spec) if not p["ok"]]  # fmt: skip
    return problems + down + missing_labels(system, spec, layout)


def _stale_venvs(system: System, layout: Layout, facts: HostFacts) -> list[str]:
    """Older releases whose venv no longer fits: not a problem yet, rollback rebuilds them."""
    current = current_release(system, layout.current)
    notes = []
    for rid in releases.release_ids(system, layout):
        venv = layout.venv(rid)
        why = venv_usable(system, venv, facts) if rid != current and system.path(venv).exists() else None
        if why:
            notes.append(f"{layout.name} release {rid}: {why} (a rollback to it rebuilds it)")
    return notes
