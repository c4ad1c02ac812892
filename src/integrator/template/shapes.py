"""Where a project's WSGI app is, found statically (ast and text, never an import of user code).

The shapes recognised: a factory (`create_app`/`make_app`) callable without arguments; a
module-level app object (`app = Flask(__name__)`, `application = ...`, Django's
`application = get_wsgi_application()`); a re-export (`wsgi.py`: `from shop import app`); a
PEP 3333 function `def application(environ, start_response)`; a Procfile `web:` line run by
gunicorn, waitress-serve or uwsgi. Candidates that are one app seen from several places (a
`wsgi.py` that re-exports or calls the factory of a package) form one group, keyed by what they
resolve to; `choose_entry` refuses to guess between groups.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import TemplateError

FACTORY_NAMES = ("create_app", "make_app")  # what `flask run` looks for, in this order
APP_NAMES = ("app", "application")
WSGI_CALLS = frozenset({"Flask", "Bottle", "get_wsgi_application", "make_wsgi_app"})
NOT_WSGI_CALLS = frozenset(  # ASGI apps, task queues, CLIs: never served by gunicorn's WSGI workers
    {"get_asgi_application", "FastAPI", "Starlette", "Quart", "Sanic", "Litestar", "Celery", "Typer", "Group"}
)
ENTRY_MODULES = frozenset({"wsgi", "app", "main", "server", "application"})  # what re-exports to serve
DJANGO_SETTINGS = "DJANGO_SETTINGS_MODULE"
PROCFILE = "Procfile"
_RANK = {"factory": 0, "django": 1, "wsgi-function": 1, "app": 1, "procfile": 2, "re-export": 3}


@dataclass(frozen=True)
class Candidate:
    """One place a WSGI app could come from."""

    entry: str  # service.toml form: "pkg.mod:create_app()" or "app:app"
    kind: str  # factory, app, django, wsgi-function, re-export, procfile
    file: PurePosixPath  # relative to the project, for messages
    origin: str = ""  # what it resolves to: candidates with one origin are one app

    def describe(self) -> str:
        return f"--entry {self.entry} ({self.file})"


@dataclass
class Module:
    """What one module binds at top level, as far as finding the app is concerned."""

    name: str
    file: PurePosixPath
    tree: ast.Module
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, name)
    values: dict[str, ast.expr] = field(default_factory=dict)  # local -> assigned value (last wins)
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)

    @property
    def is_package(self) -> bool:
        return self.file.name == "__init__.py"


@dataclass
class Found:
    """Every candidate, the factories that need arguments, and what else was learnt."""

    candidates: list[Candidate] = field(default_factory=list)
    needs_arguments: list[str] = field(default_factory=list)  # "svc/__init__.py: svc:create_app() needs ..."
    django_settings: str | None = None
    routes: set[str] = field(default_factory=set)  # literal paths: @x.route/@x.get, x.add_url_rule


def read_module(name: str, file: PurePosixPath, tree: ast.Module) -> Module:
    module = Module(name, file, tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                if source and alias.name != "*":
                    module.imports[alias.asname or alias.name] = (source, alias.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            module.defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    module.values[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            module.values[node.target.id] = node.value
    return module


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """`from .views import x` inside shop/__init__.py -> "shop.views"."""
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    base = parts if module.is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, *([node.module] if node.module else [])])


def called_name(node: ast.expr) -> str | None:
    """`Flask(...)` -> "Flask", `flask.Flask(...)` -> "Flask", anything else -> None."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _callable_without_arguments(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    kw_required = [d for d in args.kw_defaults if d is None]
    return len(positional) == len(args.defaults) and not kw_required


def _is_wsgi_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """PEP 3333: `def application(environ, start_response)`."""
    return isinstance(fn, ast.FunctionDef) and [a.arg for a in fn.args.args] == ["environ", "start_response"]


class Resolver:
    """Follows names through the project's modules: what `wsgi:app` really is."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules

    def origin(self, module: str, name: str, depth: int = 0) -> str:
        """ "pkg:create_app()" for `app = create_app()` with create_app from pkg; "mod:name" else."""
        mod = self.modules.get(module)
        if mod is None or depth > 10:
            return f"{module}:{name}"
        if name in mod.defs:
            return f"{module}:{name}"
        if name in mod.values:
            value = mod.values[name]
            if isinstance(value, ast.Name):
                return self.origin(module, value.id, depth + 1)
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and not value.args:
                called = self.origin(module, value.func.id, depth + 1)
                if called.split(":")[1] in FACTORY_NAMES:
                    return f"{called}()"
            return f"{module}:{name}"
        if name in mod.imports:
            source, attr = mod.imports[name]
            if f"{source}.{attr}" in self.modules and attr not in self.binds(source):
                return f"{source}.{attr}"  # a submodule, not an app: no ":" in the origin
            return self.origin(source, attr, depth + 1)
        return f"{module}:{name}"

    def binds(self, module: str) -> set[str]:
        mod = self.modules.get(module)
        return set(mod.defs) | set(mod.values) | set(mod.imports) if mod else set()

    def verdict(self, origin: str) -> str:
        """ "wsgi", "not-wsgi" or "unknown": what the binding `origin` names was made by."""
        module, _, name = origin.partition(":")
        if name.endswith("()") and name[:-2] in FACTORY_NAMES:
            return "wsgi"  # `app = create_app()`, wherever create_app comes from
        mod = self.modules.get(module)
        if not name or mod is None:
            return "not-wsgi" if not name else "unknown"
        name = name.removesuffix("()")
        if name in mod.defs:
            fn = mod.defs[name]
            return "wsgi" if _is_wsgi_function(fn) or name in FACTORY_NAMES else "unknown"
        call = called_name(mod.values[name]) if name in mod.values else None
        if call in NOT_WSGI_CALLS:
            return "not-wsgi"
        return "wsgi" if call in WSGI_CALLS or call in FACTORY_NAMES else "unknown"


def candidates_in(mod: Module, resolver: Resolver, found: Found) -> None:
    """The factories, app objects, PEP 3333 functions and re-exports a module binds at top level."""
    for name, fn in mod.defs.items():
        if name in FACTORY_NAMES:
            if _callable_without_arguments(fn):
                found.candidates.append(
                    Candidate(f"{mod.name}:{name}()", "factory", mod.file, f"{mod.name}:{name}()")
                )
            else:
                wanted = ", ".join(a.arg for a in [*fn.args.posonlyargs, *fn.args.args])
                found.needs_arguments.append(f"{mod.file}: {mod.name}:{name}() needs arguments ({wanted})")
        elif _is_wsgi_function(fn):
            found.candidates.append(
                Candidate(f"{mod.name}:{name}", "wsgi-function", mod.file, f"{mod.name}:{name}")
            )
    apps: list[Candidate] = []
    for name, value in mod.values.items():
        call = called_name(value)
        if call in NOT_WSGI_CALLS:
            continue
        origin = resolver.origin(mod.name, name)
        verdict = resolver.verdict(origin)
        kind = "django" if call == "get_wsgi_application" else "app"
        named = name in APP_NAMES
        likely = name == "application" or verdict == "wsgi" or mod.name.split(".")[-1] == "wsgi"
        if (named and likely and verdict != "not-wsgi") or call in WSGI_CALLS:
            apps.append(Candidate(f"{mod.name}:{name}", kind, mod.file, origin))
    for name in mod.imports:
        if name not in APP_NAMES or name in mod.values:
            continue
        origin = resolver.origin(mod.name, name)
        verdict = resolver.verdict(origin) if ":" in origin else "not-wsgi"
        if verdict == "wsgi" or (verdict == "unknown" and mod.name.split(".")[-1] in ENTRY_MODULES):
            apps.append(Candidate(f"{mod.name}:{name}", "re-export", mod.file, origin))
    found.candidates.extend(apps[:1])  # `app = Flask(...)` then `application = app`: one app


def module_facts(mod: Module, found: Found) -> None:
    """DJANGO_SETTINGS_MODULE set by the module, and the literal paths of its Flask-style routes."""
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            key, value = node.args[0], node.args[1]
            if (
                isinstance(key, ast.Constant)
                and key.value == DJANGO_SETTINGS
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and found.django_settings is None
            ):
                found.django_settings = value.value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_url_rule"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.routes.add(node.args[0].value)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr in {"route", "get"}
                    and deco.args
                    and isinstance(deco.args[0], ast.Constant)
                    and isinstance(deco.args[0].value, str)
                ):
                    found.routes.add(deco.args[0].value)


# --- the choice ---------------------------------------------------------------------------------


def groups_of(candidates: list[Candidate]) -> list[list[Candidate]]:
    """Candidates that resolve to one app, together; each group best first."""
    groups: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault(candidate.origin or candidate.entry, []).append(candidate)
    return [sorted(g, key=lambda c: (_RANK[c.kind], c.entry)) for g in groups.values()]


def choose_entry(found: Found, root: Path) -> Candidate:
    """The one app of the project; never a guess between several, nor a factory without its arguments."""
    groups = groups_of(found.candidates)
    if len(groups) > 1:
        best = sorted((g[0] for g in groups), key=lambda c: c.entry)
        listed = "; ".join(c.describe() for c in best)
        raise TemplateError(f"found {len(best)} possible apps in {root}, choose one: {listed}")
    if groups:
        return groups[0][0]
    if found.needs_arguments:
        raise TemplateError(
            f"{'; '.join(found.needs_arguments)}: gunicorn calls a factory without arguments, "
            "so add a module that calls it with them (wsgi.py: `app = create_app(...)`) "
            "and pass --entry wsgi:app"
        )
    raise TemplateError(
        f"no Flask/WSGI app found in {root}: looked for create_app()/make_app(), a module-level "
        "`app = Flask(...)` or `application`, a re-export in wsgi.py, `def application(environ, "
        "start_response)` and a Procfile web: line; pass --entry MODULE:APP"
    )
