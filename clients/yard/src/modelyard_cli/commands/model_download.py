"""`yard models download | verify`: an artifact over a signed URL, checked, with its signed manifest.

`download` asks registry-svc for a URL (GetDownloadUrl) and fetches the bytes with the caller's own
bearer token (the URL is issued to the caller), resuming a cut connection; the file lands at its
path only when its size and SHA-256 match. An approved version comes with the registry's signed
manifest: it is checked against the pinned registry public keys *before* any byte is fetched, the
bytes are then checked against the manifest, and the manifest is saved beside the file
(`PATH.manifest.json`), so `verify` can check the pair again later, offline.

`verify` exits 0 when the manifest verifies under a pinned key and the file has its size and
SHA-256, and NOT_VERIFIED_EXIT_CODE (1) with the reason otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.v1 import registry_pb2
from modelyard_artifacts.download import DownloadError, download_artifact
from modelyard_artifacts.integrity import ArtifactMismatch
from modelyard_artifacts.manifest import (
    ArtifactManifest,
    MalformedManifest,
    ManifestSignatureError,
    ManifestVerifier,
    SignedManifest,
    verify_artifact_file,
)
from modelyard_cli.commands.download_progress import DownloadMeter
from modelyard_cli.commands.models import VersionId
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.commands.registry_keys import PUBLIC_KEYS_ENV, PublicKeys, pinned_verifier
from modelyard_cli.connection import RegistrySvc
from modelyard_cli.invocation import call_registry_svc, cli_state, command_token, output_for
from modelyard_cli.output import Output, fail
from modelyard_cli.render.model_files import (
    approval_text,
    artifact_file_name,
    downloaded_line,
    manifest_document,
    manifest_path_for,
    verified_line,
)

NOT_VERIFIED_EXIT_CODE = 1


@dataclass(frozen=True)
class Grant:
    """What registry-svc handed out: a download URL and, for a version without a signed manifest whose
    file needs a name, that name (from GetVersion)."""

    url: registry_pb2.DownloadUrl
    file_name: str | None = None


@dataclass(frozen=True)
class Downloaded:
    """A finished download: the file, where its manifest was saved, and what verified it."""

    version_id: str
    path: Path
    url: registry_pb2.DownloadUrl
    signed: SignedManifest | None  # None: the version is not approved
    manifest: ArtifactManifest | None  # None: not verified (no key pinned, or no manifest)
    manifest_path: Path | None


def download(
    ctx: typer.Context,
    version_id: VersionId,
    output: Annotated[
        Path | None, typer.Option(help="Where to write the artifact (default: ./<module>-<semver>.pt).")
    ] = None,
    public_key: PublicKeys = None,
    as_json: JsonFlag = False,
) -> None:
    """Download a version's artifact, check it, and save (and verify) its signed manifest beside it."""
    verifier = pinned_verifier(public_key)
    out = output_for(ctx, as_json)
    token = command_token(ctx)
    grant = call_registry_svc(ctx, lambda svc: fetch_grant(svc, version_id, named=output is not None))
    signed = signed_manifest_of(grant.url)
    manifest = trusted(signed, verifier) if signed is not None and verifier is not None else None
    path = output or Path(grant.file_name or _name_in(signed))
    tls = cli_state(ctx).connection.tls  # MODELYARD_TLS_CA_FILE also vouches for an https URL
    ca_file = None if tls is None else tls.tls_ca_file
    _fetch(grant.url, path, token, label=f"downloading {version_id}", shown=not out.as_json, ca_file=ca_file)
    saved = _save_manifest(grant.url, path)
    result = Downloaded(version_id, path, grant.url, signed, manifest, saved)
    if out.as_json:
        out.document(_download_document(result))
    else:
        _report(out, result)


async def fetch_grant(svc: RegistrySvc, version_id: str, named: bool) -> Grant:
    """A download URL issued to the caller; and, when the file needs a name that no signed manifest
    gives, the version's module and number (GetVersion)."""
    request = registry_pb2.DownloadUrlRequest(version_id=version_id)
    url: registry_pb2.DownloadUrl = await svc.registry.GetDownloadUrl(request)
    if named or url.HasField("signed_manifest_json"):
        return Grant(url)
    version = await svc.registry.GetVersion(registry_pb2.ModelVersionRef(version_id=version_id))
    return Grant(url, artifact_file_name(version.ai_module, version.semantic_version))


def signed_manifest_of(url: registry_pb2.DownloadUrl) -> SignedManifest | None:
    """The signed manifest that came with the URL (None before approval); the command ends (exit 1)
    when it is malformed or names other bytes than the URL does."""
    if not url.HasField("signed_manifest_json"):
        return None
    try:
        signed = SignedManifest.from_json(url.signed_manifest_json.encode())
    except MalformedManifest as error:
        fail(f"error: the registry's manifest: {error}", exit_code=NOT_VERIFIED_EXIT_CODE)
    named = (signed.manifest.artifact_sha256, signed.manifest.artifact_size_bytes)
    if named != (url.artifact_sha256, url.artifact_size_bytes):
        fail(
            f"error: the signed manifest names SHA-256 {named[0]} ({named[1]:,} bytes), the download URL "
            f"{url.artifact_sha256} ({url.artifact_size_bytes:,} bytes); nothing was downloaded",
            exit_code=NOT_VERIFIED_EXIT_CODE,
        )
    return signed


def trusted(signed: SignedManifest, verifier: ManifestVerifier) -> ArtifactManifest:
    """The manifest when a pinned key signed it; the command ends (exit 1) otherwise."""
    try:
        return verifier.verify(signed)
    except ManifestSignatureError as error:
        fail(f"error: {error}", exit_code=NOT_VERIFIED_EXIT_CODE)


def _name_in(signed: SignedManifest | None) -> str:
    assert signed is not None, "fetch_grant names the file of a version without a manifest"
    return artifact_file_name(signed.manifest.ai_module, signed.manifest.semantic_version)


def _fetch(
    url: registry_pb2.DownloadUrl, path: Path, token: str, label: str, shown: bool, ca_file: Path | None
) -> None:
    """Download to `path` with the caller's token; the command ends on a refusal (2) or a mismatch (1)."""
    try:
        with DownloadMeter(label, shown) as meter:
            asyncio.run(
                download_artifact(
                    url.url,
                    path,
                    expected_sha256=url.artifact_sha256,
                    expected_size=url.artifact_size_bytes,
                    headers={"Authorization": f"Bearer {token}"},
                    progress=meter.update,
                    ca_file=ca_file,
                )
            )
    except ArtifactMismatch as error:
        fail(f"error: {error}", exit_code=NOT_VERIFIED_EXIT_CODE)
    except DownloadError as error:
        fail(f"error: {error}")
    except OSError as error:
        fail(f"error: cannot write {path}: {error.strerror or error}")


def _save_manifest(url: registry_pb2.DownloadUrl, path: Path) -> Path | None:
    if not url.HasField("signed_manifest_json"):
        return None
    saved = manifest_path_for(path)
    saved.write_text(url.signed_manifest_json, encoding="utf-8")
    return saved


def _report(out: Output, done: Downloaded) -> None:
    url = done.url
    out.lines([downloaded_line(done.version_id, done.path, url.artifact_sha256, url.artifact_size_bytes)])
    if done.signed is None or done.manifest_path is None:
        out.hint(
            f"{done.version_id} is not approved, so it has no signed manifest: the file matches the "
            "SHA-256 the registry gave, and nothing else vouches for it"
        )
    elif done.manifest is not None:
        out.lines(
            [
                f"manifest {done.manifest_path}: signature verified (key {done.signed.key_id}), "
                f"{approval_text(done.manifest)}"
            ]
        )
    else:
        out.lines([f"manifest {done.manifest_path}: saved, NOT verified (no registry public key pinned)"])
        out.hint(
            f"to verify it: yard models verify {done.path} --public-key KEY (the registry's public key), "
            f"or set {PUBLIC_KEYS_ENV}='[\"KEY\"]'"
        )


def _download_document(done: Downloaded) -> dict[str, Any]:
    signed = done.signed
    return {
        "version_id": done.version_id,
        "path": str(done.path),
        "artifact_sha256": done.url.artifact_sha256,
        "artifact_size_bytes": done.url.artifact_size_bytes,
        "manifest_path": None if done.manifest_path is None else str(done.manifest_path),
        "manifest_verified": done.manifest is not None,
        "manifest": None if signed is None else manifest_document(signed.manifest, signed.key_id),
    }


def verify(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The artifact file.", show_default=False)],
    manifest: Annotated[
        Path | None, typer.Option(help="Its signed manifest (default: FILE.manifest.json).")
    ] = None,
    public_key: PublicKeys = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a file offline against its signed manifest and the pinned keys; exit 1 when it fails."""
    verifier = pinned_verifier(public_key)
    if verifier is None:
        fail(f"error: no registry public key to verify with: pass --public-key KEY or set {PUBLIC_KEYS_ENV}")
    signed = _read_manifest(manifest or manifest_path_for(file))
    try:
        checked = verify_artifact_file(file, signed, verifier)
    except (ManifestSignatureError, ArtifactMismatch) as error:
        fail(f"error: {error}", exit_code=NOT_VERIFIED_EXIT_CODE)
    except OSError as error:
        fail(f"error: cannot read {file}: {error.strerror or error}", exit_code=NOT_VERIFIED_EXIT_CODE)
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document({"verified": True, "file": str(file), **manifest_document(checked, signed.key_id)})
    else:
        out.lines([verified_line(checked)])


def _read_manifest(path: Path) -> SignedManifest:
    try:
        return SignedManifest.from_json(path.read_bytes())
    except OSError as error:
        fail(
            f"error: cannot read the manifest {path}: {error.strerror or error}",
            exit_code=NOT_VERIFIED_EXIT_CODE,
        )
    except MalformedManifest as error:
        fail(f"error: {path}: {error}", exit_code=NOT_VERIFIED_EXIT_CODE)
