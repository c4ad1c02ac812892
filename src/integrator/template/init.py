"""`integrator init`: adopt an existing WSGI project by writing its service.toml.

Checks everything it can in memory first, then writes the one file; nothing here prints.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..errors import SpecError, TemplateError
from ..project.metadata import PYPROJECT, requirement_name
from ..project.model import PACKAGED, Project, describe, load_project
from ..result import Result
from ..spec import SPEC_FILE, ServiceSpec, parse_spec
from .adopt import FLASK_KINDS, find_candidates, flask_static_dir, needed_extras, normalise_name
from .django import django_tables, overlay_path, overlay_text
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
    project: Project,
    root: Path,
    name: str | None,
    entry: str,
    health: str,
    static: str | None = None,
    extras: list[str] | None = None,
    tables: dict[str, dict[str, object]] | None = None,
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
    for table, values in (tables or {}).items():
        data.setdefault(table, {}).update(values)
    if health != "/healthz":
        data.setdefault("http", {})["health_path"] = health
    if static is not None:
        data["static"] = {"/static/": static}
    if extras:
        data.setdefault("package", {})["extras"] = extras
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


def init(directory: Path, name: str | None = None, entry: str | None = None, install: bool = False) -> Result:
    """Write service.toml for an existing Flask/WSGI project; no other file is touched.

    `install`: without a venv in the project, install the app into a throwaway one (as the
    bundle's preflight does) to ask it for its health path; the CLI does unless --no-probe.
    """
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
    extras = needed_extras(project, spec.wsgi_module) if project.packaging == PACKAGED else []
    kind = picked.kind if picked else next((c.kind for c in found.candidates if c.entry == entry), "app")
    project, tables, overlay = (
        _django(project, root, found, spec) if kind == "django" else (project, {}, None)
    )
    spec = _adopted_spec(project, root, name, chosen, "/healthz", extras=extras, tables=tables)
    probe = probe_health(project, spec, install=install)
    health = probe.path if probe and probe.path else spec.http.health_path
    if probe is None and health == "/healthz":
        health = health_path(found.routes)
    origin = (picked.origin or picked.entry) if picked else chosen
    static = flask_static_dir(project, origin.split(":")[0]) if kind in FLASK_KINDS else None
    spec = _adopted_spec(project, root, name, chosen, health, static, extras, tables)
    write_new_file(target, service_toml(spec))
    result = _init_result(project, found, spec, target, entry_given=entry is not None, probe=probe)
    if overlay is not None:
        result.say(
            f"  Django: {overlay[0]} ({'written' if overlay[1] else 'kept, not overwritten'}): the "
            "settings a host needs, used through [env] DJANGO_SETTINGS_MODULE"
            + (
                f"; `integrator bundle` runs `{shlex.join(spec.package.build)}` first ([package] build)"
                if spec.package.build
                else "; run `python manage.py collectstatic --noinput` before `integrator bundle`"
            )
            + " (docs/adopt.md)"
        )
    result.data["notes"] = [*project.notes, *notes]
    for note in result.data["notes"]:
        result.warn(note)
    _init_warnings(result, project, found, spec, kind, probe)
    result.say("next: review service.toml, then `integrator render` and `integrator bundle`")
    return result


def _django(
    project: Project, root: Path, found: Found, spec: ServiceSpec
) -> tuple[Project, dict[str, dict[str, object]], tuple[str, bool] | None]:
    """Write the settings overlay (template/django.py) unless there is one: the reloaded project,
    the tables it needs in service.toml, and (its path, whether it was written now)."""
    settings = found.django_settings
    rel = overlay_path(project, settings) if settings else None
    if settings is None or rel is None:
        return project, {}, None
    path = root / rel
    written = not path.exists()
    if written:
        write_new_file(path, overlay_text(settings))
    project = load_project(root)
    tables = django_tables(project, settings, spec.effective_server_names)
    found.routes.add(str(tables.get("http", {}).get("health_path", "/healthz")))  # the admin's login
    return project, tables, (rel.as_posix(), written)


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
    source = project.version_from if project.version else "none in the project: service.toml's"
    result.say(f"  version: {spec.version} ({source})")
    if project.requires_python:
        result.say(f"  requires Python {project.requires_python}: the bundle's default targets follow it")
    if probe is not None and probe.path:
        result.say(f"  health_path: {spec.http.health_path} ({probe.line})")
    elif spec.http.health_path != "/healthz":
        result.say(f"  health_path: {spec.http.health_path} (the app has that route and no /healthz)")
    if found.django_settings:
        result.say(
            f"  Django settings: {found.django_settings} (set by the project's wsgi.py; "
            "docs/adopt.md, Django)"
        )
    for line in _layout_notes(project):
        result.say(f"  {line}")
    if spec.package.extras:
        result.say(
            f"  extras: {', '.join(spec.package.extras)} ({PYPROJECT} optional dependencies that "
            f"{spec.wsgi_module} imports): the bundle installs them too"
        )
    for prefix, directory in spec.static.paths:
        what = "Django's STATIC_ROOT" if found.django_settings else "Flask's static folder"
        result.say(f'  static: "{prefix}" = "{directory}" ({what}): nginx serves it, not gunicorn')
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
        and not spec.package.extras
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
    underscored = [n for n in spec.effective_server_names if "_" in n and n != "_"]
    if found.django_settings and underscored:
        result.warn(
            f"server name {underscored[0]!r}: Django refuses a Host with '_' (400, RFC 1034): "
            "pass --name without one, or set [http] server_names and [env] DJANGO_ALLOWED_HOSTS"
        )
    if project.packaging == PACKAGED and project.version is None:
        result.warn(
            f"no static version in {PYPROJECT}: service.toml says {spec.version}; "
            "`integrator bundle` refuses a wheel whose version differs"
        )
