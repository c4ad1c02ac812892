"""`integrator init`: adopt an existing WSGI project by writing its service.toml.

Checks everything it can in memory first, then writes the one file; nothing here prints.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, TemplateError
from ..project.metadata import PYPROJECT, requirement_name
from ..project.model import PACKAGED, Project, describe, load_project
from ..result import Result
from ..spec import SPEC_FILE, ServiceSpec, parse_spec
from .adopt import FLASK_KINDS, find_candidates, flask_static_dir, normalise_name
from .probe import Probe, probe_health
from .shapes import Found, choose_entry
from .tree import DEFAULT_VERSION, host_names, service_toml, title_of, write_new_file


def _derive_name(project: Project, root: Path) -> tuple[str, str]:
    """(name, where it came from): pyproject's project name, else the directory's name."""
    if project.project_name:
        where = f"{PYPROJECT} {project.metadata_from} name {project.project_name!r}"
        return normalise_name(project.project_name), where
    return normalise_name(root.resolve().name), f"directory name {root.resolve().name!r}"


def health_path(routes: set[str]) -> str:
    """/healthz, else /health when the app's routes (as far as seen) have that and not /healthz."""
    return "/health" if "/healthz" not in routes and "/health" in routes else "/healthz"


def _adopted_spec(
    project: Project, root: Path, name: str | None, entry: str, health: str, static: str | None = None
) -> ServiceSpec:
    derived_from = ""
    if name is None:
        name, derived_from = _derive_name(project, root)
    version = project.version or DEFAULT_VERSION
    data: dict[str, dict[str, object]] = {
        "service": {
            "name": name,
            "version": version,
            "entry": entry,
            "description": project.description or title_of(name),
        }
    }
    if health != "/healthz":
        data["http"] = {"health_path": health}
    if static is not None:
        data["static"] = {"/static/": static}
    try:
        return parse_spec(data, source="init")
    except SpecError as exc:
        if derived_from and "[service] name" in exc.message:
            raise SpecError(f"{exc.message}; derived from the {derived_from}: pass --name") from None
        raise


def _layout_notes(project: Project) -> list[str]:
    """What `integrator bundle` will do with this project, so nothing about it is a surprise."""
    if project.packaging == PACKAGED:
        first = f"layout: {project.build_file}: the bundle builds this project's wheel and its dependencies"
    else:
        deps = f" and installs {project.requirements}" if project.requirements else ""
        first = f"layout: flat (no {PYPROJECT}): the bundle writes its wheel of these files{deps}"
    return [first, *(f"  {line}" for line in describe(project))]


def init(directory: Path, name: str | None = None, entry: str | None = None) -> Result:
    """Write service.toml for an existing Flask/WSGI project; no other file is touched."""
    root = directory
    if not root.is_dir():
        raise TemplateError(f"{root} is not a directory")
    target = root / SPEC_FILE
    if target.exists():
        raise TemplateError(
            f"{target} already exists: init never overwrites it (edit it, or remove it to start again)"
        )
    project = load_project(root)
    found, notes = find_candidates(project)
    picked = choose_entry(found, root) if entry is None else None
    chosen = picked.entry if picked else str(entry)
    spec = _adopted_spec(project, root, name, chosen, "/healthz")
    _check_adopted(project, spec, root, entry)
    probe = probe_health(project, spec)
    health = probe.path if probe and probe.path else health_path(found.routes)
    kind = picked.kind if picked else next((c.kind for c in found.candidates if c.entry == entry), "app")
    origin = (picked.origin or picked.entry) if picked else chosen
    static = flask_static_dir(project, origin.split(":")[0]) if kind in FLASK_KINDS else None
    spec = _adopted_spec(project, root, name, chosen, health, static)
    write_new_file(target, service_toml(spec))
    result = _init_result(project, found, spec, target, entry_given=entry is not None, probe=probe)
    result.data["notes"] = [*project.notes, *notes]
    for note in result.data["notes"]:
        result.warn(note)
    _init_warnings(result, project, found, spec, kind, probe)
    result.say("next: review service.toml, then `integrator render` and `integrator bundle`")
    return result


def _check_adopted(project: Project, spec: ServiceSpec, root: Path, entry: str | None) -> None:
    """What would make the first deploy fail for certain: a module that is not there, a name taken."""
    modules = {dotted for dotted, _ in project.module_files()}
    if entry is not None and spec.wsgi_module not in modules:
        raise TemplateError(
            f"--entry {entry}: no module {spec.wsgi_module!r} in {root} "
            f"(found: {', '.join(sorted(modules)) or 'none'}); check the spelling"
        )
    clash = [d for d in project.dependencies if requirement_name(d) == requirement_name(spec.name)]
    if clash:
        raise TemplateError(
            f"service name {spec.name!r} is also the name of a dependency ({clash[0]}): "
            "the app's wheel would take its place; pass --name"
        )


def _init_result(
    project: Project, found: Found, spec: ServiceSpec, target: Path, *, entry_given: bool, probe: Probe | None
) -> Result:
    result = Result(
        data={
            "name": spec.name,
            "entry": spec.entry,
            "version": spec.version,
            "spec": str(target),
            "layout": project.packaging,
            "build_file": project.build_file,
            "source_root": project.source_root,
            "modules": project.modules,
            "files": [p.as_posix() for p in project.shipped],
            "not_packaged": project.not_shipped,
            "requirements": project.requirements,
            "dependencies": project.dependencies,
            "dependencies_from": project.dependencies_from,
            "candidates": [c.entry for c in found.candidates],
            "requires_python": project.requires_python,
            "django_settings": found.django_settings,
            "health_path": spec.http.health_path,
            "health_probe": probe.line if probe else None,
            "static": dict(spec.static.paths),
            "notes": project.notes,
        }
    )
    how = "given with --entry" if entry_given else "found"
    result.say(f"wrote {target}: service {spec.name} {spec.version}, entry {spec.entry} ({how})")
    deps = (
        f"{len(project.dependencies)} from {project.dependencies_from}"
        if project.dependencies_from
        else "none found"
    )
    result.say(f"  dependencies: {deps}")
    stated = f"{PYPROJECT} {project.metadata_from}"
    source = stated if project.version else "none in the project: service.toml's"
    result.say(f"  version: {spec.version} ({source})")
    if project.requires_python:
        result.say(f"  requires Python {project.requires_python}: the bundle's default targets follow it")
    if probe is not None and probe.path:
        result.say(f"  health_path: {spec.http.health_path} ({probe.line})")
    elif spec.http.health_path != "/healthz":
        result.say(f"  health_path: {spec.http.health_path} (the app has that route and no /healthz)")
    if found.django_settings:
        result.say(
            f"  Django settings: {found.django_settings} (set by the project's wsgi.py); "
            "see docs/adopt.md for ALLOWED_HOSTS, SECRET_KEY and static files"
        )
    for line in _layout_notes(project):
        result.say(f"  {line}")
    for prefix, directory in spec.static.paths:
        result.say(
            f'  static: "{prefix}" = "{directory}" (Flask\'s static folder): nginx serves it, not gunicorn'
        )
    result.say(f"  on a host: {host_names(spec)}")
    return result


def _init_warnings(
    result: Result, project: Project, found: Found, spec: ServiceSpec, kind: str, probe: Probe | None
) -> None:
    framework = {"django": "django", "app": "flask", "factory": "flask", "re-export": "flask"}.get(kind)
    if project.dependencies_from is None:
        result.warn(
            f"no dependencies found (no [project] dependencies, no requirements.txt) in {project.root}"
        )
    elif (
        framework
        and project.dependencies
        and framework not in {requirement_name(d) for d in project.dependencies}
    ):
        result.warn(f"{framework} is not among the dependencies in {project.dependencies_from}")
    if probe is not None and not probe.path:
        result.warn(f"{probe.line}: health_path {spec.http.health_path} is from the routes read instead")
    elif probe is None and spec.http.health_path not in found.routes:
        seen = ", ".join(sorted(found.routes)[:5]) or "none"
        result.warn(
            f"no route {spec.http.health_path} seen in the project "
            f"(routes seen: {seen}; only literal paths of "
            "@app.route/@app.get and add_url_rule are read): the deploy's health check asks for it; "
            "make sure it answers 200, or set [http] health_path to a path that does"
        )
    if project.packaging == PACKAGED and project.version is None:
        result.warn(
            f"no static version in {PYPROJECT}: service.toml says {spec.version}; "
            "`integrator bundle` refuses a wheel whose version differs"
        )
