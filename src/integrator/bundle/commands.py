"""`integrator bundle` and `integrator verify`: build one offline .pyz, and check one.

Building runs the stages in order: spec -> source info -> wheels and locks -> manifest ->
signature -> zip, then verifies the written file as a host would. Only progress lines go
to stderr from here; everything else is the returned Result.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import EnvironmentProblem
from ..project.model import Project, check_version, load_project
from ..result import Result
from ..spec import SPEC_FILE, ServiceSpec, load_spec
from .appwheel import (
    app_requires_python,
    build_app_wheel,
    check_extras,
    left_out_by_backend,
    prepare_requirements,
    wheel_files,
)
from .buildstep import run_build
from .manifest import LOCKS, InstallTarget, Manifest, sha256_file, verify_zip
from .preflight import Verdict, throwaway_venv
from .preflight import preflight as run_preflight
from .source import SourceInfo, source_info
from .static import static_members
from .targets import DEFAULT_PYTHONS, TargetSpec, parse_targets, project_targets
from .verify import verify_bundle
from .wheels import Wheelhouse, collect_wheels
from .zipapp import MAIN_PY, Source, file_entries, host_code, package_dir, payload, write_pyz

Progress = Callable[[str], None]
SKIPPED = Verdict(
    "skipped (--no-preflight): the host's health check is the only gate",
    {"ran": False, "reason": "--no-preflight"},
)


def _to_stderr(message: str) -> None:
    sys.stderr.write(f"integrator: {message}\n")
    sys.stderr.flush()


def bundle_name(spec: ServiceSpec) -> str:
    return f"{spec.name}-{spec.version}.pyz"


def spec_json(spec: ServiceSpec) -> bytes:
    return (json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def make_manifest(
    spec: ServiceSpec, source: SourceInfo, house: Wheelhouse, members: Mapping[str, Source]
) -> Manifest:
    targets = tuple(
        InstallTarget(
            python=lock.target.python,
            machine=lock.target.machine,
            platform=lock.target.newest_platform,
            glibc=lock.glibc,
            lock=f"{LOCKS}/{lock.target.tag}.txt",
        )
        for lock in house.locks
    )
    return Manifest(
        name=spec.name,
        version=spec.version,
        source_commit=source.commit,
        dirty=source.dirty,
        built_at=source.built_at,
        builder=f"integrator {__version__}",
        app_wheel=house.app_wheel,
        spec=json.loads(spec_json(spec)),
        targets=targets,
        files=file_entries(members),
    )


def bundle(
    dir: Path,
    pythons: Sequence[str] | None,
    platforms: Sequence[str],
    output: Path,
    sign_key: Path | None = None,
    progress: Progress = _to_stderr,
    preflight: bool = True,
) -> Result:
    """Build OUTPUT/NAME-VERSION.pyz: host code, app wheel, wheelhouse, a lock per target, manifest.

    `pythons` None: the default targets the project's Requires-Python admits. `preflight`: install
    one target, import the entry and ask for the health path before anything is written.
    """
    started = time.monotonic()
    spec = load_spec(dir)
    targets = parse_targets(DEFAULT_PYTHONS if pythons is None else pythons, platforms)
    source = source_info(dir, output)
    out = output / bundle_name(spec)
    project = load_project(dir, include=spec.package.include, exclude=spec.package.exclude, skip=[output])
    check_version(project, spec.version, SPEC_FILE)  # before any build or download
    check_extras(project, None, spec.package.extras)
    given = pythons is not None
    with tempfile.TemporaryDirectory(prefix="integrator-bundle-") as tmp:
        work = Path(tmp)
        built = None
        if spec.package.build:  # before anything is collected: what it writes is packaged
            first = work / "build"
            first.mkdir()
            progress(f"building the wheel of {spec.name} {spec.version} for [package] build ...")
            _, _, house = _collect(spec, project, targets, first, source.epoch, output, given, progress)
            if throwaway_venv(house, first / "env", "build", progress)[0] is None:
                tags = ", ".join(lock.target.tag for lock in house.locks)
                raise EnvironmentProblem(
                    f"[package] build: no interpreter here for {tags} to install the dependencies into; "
                    "install one of those Pythons on this machine"
                )
            built = run_build(spec, dir, first / "env" / "venv", os.environ, progress)
            project = load_project(
                dir, include=spec.package.include, exclude=spec.package.exclude, skip=[output]
            )
        static = static_members(dir, spec.static.paths)
        progress(f"building the wheel of {spec.name} {spec.version} ...")
        app, notes, house = _collect(spec, project, targets, work, source.epoch, output, given, progress)
        for note in notes:
            progress(note)
        app_files = [p.as_posix() for p in wheel_files(app)]
        missing = [p.as_posix() for p in left_out_by_backend(project, app)]
        verdict = run_preflight(spec, house, work, progress) if preflight else SKIPPED
        members = {
            "__main__.py": MAIN_PY,
            **host_code(package_dir()),
            **payload(spec_json(spec), house),
            **static,
        }
        manifest = make_manifest(spec, source, house, members)
        manifest_bytes = manifest.to_json()
        signature = None
        if sign_key is not None:
            from .sign import sign_manifest

            progress(f"signing with {sign_key} ...")
            signature = sign_manifest(manifest_bytes, sign_key)
        progress(f"writing {out} ...")
        write_pyz(out, members, manifest_bytes, signature, source.epoch)
    verify_zip(out)  # what a host will do first: fail here rather than there
    seconds = time.monotonic() - started
    result = _bundle_result(out, manifest, signature is not None, verdict, seconds, app_files)
    if built is not None:
        result.say(f"  build    {built}")
        result.data["build"] = built
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        result.warn(
            f"the app wheel lacks {len(missing)} file(s) of the project's packages: {shown}; code that "
            f"reads them will fail on the host: add them to its build's package data ({project.build_file})"
        )
    return result


def _collect(
    spec: ServiceSpec,
    project: Project,
    targets: Sequence[TargetSpec],
    work: Path,
    epoch: int,
    output: Path,
    given: bool,
    progress: Progress,
) -> tuple[Path, list[str], Wheelhouse]:
    """The app wheel, the targets' notes and the wheelhouse of `project` as it is now."""
    app = build_app_wheel(project, spec, work, epoch, exclude=output.resolve())
    targets, notes = project_targets(targets, app_requires_python(app), given=given)
    requirements = prepare_requirements(project, work, progress)
    check_extras(project, app, spec.package.extras)
    house = collect_wheels(
        app,
        requirements,
        targets,
        work,
        project.root,
        progress,
        optional=not given,
        extras=spec.package.extras,
        requires=spec.package.requires,
    )
    return app, notes, house


def _app_line(wheel: str, files: list[str], limit: int = 8) -> str:
    """`shop-0.1.0-py3-none-any.whl: 3 files (app.py, config.json, templates/index.html)`."""
    shown = ", ".join(files[:limit]) + (f" and {len(files) - limit} more" if len(files) > limit else "")
    return f"{wheel}: {len(files)} files ({shown})"


def _bundle_result(
    out: Path, manifest: Manifest, signed: bool, verdict: Verdict, seconds: float, app_files: list[str]
) -> Result:
    size = out.stat().st_size
    digest = sha256_file(out)
    wheels = sum(1 for name in manifest.files if name.endswith(".whl"))
    tags = [t.tag for t in manifest.targets]
    result = Result()
    result.say(f"built {out}")
    result.say(f"  size     {size / (1 << 20):.1f} MiB ({size} bytes)")
    result.say(f"  sha256   {digest}")
    result.say(f"  targets  {', '.join(tags)}")
    result.say(f"  contents {wheels} wheels, {len(manifest.files)} files")
    result.say(f"  app      {_app_line(manifest.app_wheel, app_files)}")
    result.say(
        f"  source   {manifest.source_commit or 'not a git checkout'}{' (dirty)' if manifest.dirty else ''}"
    )
    result.say(f"  signed   {'yes' if signed else 'no'}")
    result.say(f"  preflight {verdict.line}")
    result.say(f"  time     {seconds:.1f} s")
    result.data = {
        "path": str(out),
        "size": size,
        "sha256": digest,
        "name": manifest.name,
        "version": manifest.version,
        "targets": tags,
        "wheels": wheels,
        "files": len(manifest.files),
        "source_commit": manifest.source_commit,
        "dirty": manifest.dirty,
        "signed": signed,
        "preflight": verdict.data,
        "app_files": app_files,
        "seconds": round(seconds, 2),
    }
    return result


def verify(bundle: Path, allowed_signers: Path | None = None) -> Result:
    """Every member against the manifest, nothing extra, no unsafe path; the signature if asked."""
    return verify_bundle(bundle, allowed_signers=allowed_signers)
