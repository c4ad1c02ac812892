"""`verify`: the whole check of one bundle, as a Result (HOST-SIDE: the .pyz verifies itself).

Shared by `integrator verify BUNDLE` and `python3 BUNDLE.pyz verify`. Self-verification
catches corruption (a bad USB copy, a truncated download); against deliberate tampering
rely on a signature checked with --allowed-signers, or on the .pyz sha256 printed at build.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BundleError, SpecError
from ..result import Result
from ..spec import ServiceSpec
from .manifest import SPEC_PATH, Manifest, iter_wheels, read_manifest_bytes, read_signature, verify_zip
from .sign import verify_manifest


def check_signature(bundle: Path, allowed_signers: Path | None) -> str:
    """'good: ...', 'unsigned' or 'present, not checked'; a bad or missing-when-required one raises."""
    signature = read_signature(bundle)
    if allowed_signers is None:
        return "unsigned" if signature is None else "present, not checked (use --allowed-signers FILE)"
    if signature is None:
        raise BundleError(f"{bundle}: not signed, but --allowed-signers requires a signature")
    return "good: " + verify_manifest(read_manifest_bytes(bundle), signature, allowed_signers, str(bundle))


def verify_bundle(bundle: Path, allowed_signers: Path | None = None) -> Result:
    """Every member hashed against the manifest, nothing extra, no unsafe path; then the signature."""
    manifest = verify_zip(bundle)
    bundle_spec(bundle, manifest)
    signature = check_signature(bundle, allowed_signers)
    return _report(bundle, manifest, signature)


def bundle_spec(bundle: Path, manifest: Manifest) -> ServiceSpec:
    """The spec a host renders from, validated whole like service.toml, and naming the same
    service as the manifest. A bad one makes a bad bundle (exit 1), at verify as at deploy."""
    try:
        spec = ServiceSpec.from_dict(manifest.spec, source=f"{bundle}: {SPEC_PATH}")
    except SpecError as exc:
        raise BundleError(exc.message) from None
    if (manifest.name, manifest.version) != (spec.name, spec.version):
        raise BundleError(
            f"{bundle}: the manifest's name and version ({manifest.name[:40]!r} {manifest.version[:40]!r}) "
            f"differ from {SPEC_PATH}'s ({spec.name} {spec.version})"
        )
    return spec


def _report(bundle: Path, manifest: Manifest, signature: str) -> Result:
    commit = manifest.source_commit or "(not from a git checkout)"
    if manifest.source_commit and manifest.dirty:
        commit += " (with uncommitted changes)"
    targets = [
        f"{t.tag} (glibc >= {t.glibc})" if t.glibc else f"{t.tag} (pure Python)" for t in manifest.targets
    ]
    result = Result()
    result.say(f"ok {bundle}")
    result.say(f"  service   {manifest.name} {manifest.version}")
    result.say(f"  commit    {commit}")
    result.say(f"  built     {manifest.built_at} by {manifest.builder}")
    result.say(f"  targets   {', '.join(targets)}")
    result.say(f"  files     {len(manifest.files)} ok ({len(list(iter_wheels(manifest)))} wheels)")
    result.say(f"  signature {signature}")
    result.data = {
        "bundle": str(bundle),
        "name": manifest.name,
        "version": manifest.version,
        "source_commit": manifest.source_commit,
        "dirty": manifest.dirty,
        "built_at": manifest.built_at,
        "targets": [vars(t) for t in manifest.targets],
        "files": len(manifest.files),
        "signature": signature,
    }
    return result
