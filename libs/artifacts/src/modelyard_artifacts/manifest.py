"""Signed artifact manifests: the registry vouches for an approved model version's bytes (DESIGN §5).

At approval the registry signs, with its Ed25519 key, what an edge needs to trust an artifact it
downloads from anywhere: the version, module, semantic version, the artifact's SHA-256 and size, the
hash of its configuration and who approved it. The signature covers the canonical JSON of the
manifest behind a domain prefix, so it can never be replayed as an event head or a download URL.
An edge pins the registry's public key(s) and accepts an artifact only when the manifest verifies
and the file's bytes match it (`verify_artifact_file`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
)

from modelyard_artifacts.integrity import SHA256_PATTERN, check_file
from modelyard_artifacts.signature_text import signature_bytes, signature_text
from modelyard_events.canonical import canonical_json, canonical_timestamp
from modelyard_events.signing import Ed25519Key, SigningKeyError, key_id_of, public_key_from_text

MANIFEST_FORMAT = "modelyard.artifact-manifest/1"
MAX_SIGNED_MANIFEST_BYTES = 64 * 1024
_DOMAIN = b"modelyard.v1.artifact-manifest\n"

Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class MalformedManifest(ValueError):
    """Bytes that are not a signed manifest (not JSON, a field missing or wrong, too large)."""


class ManifestSignatureError(ValueError):
    """A manifest this verifier must not trust: unknown key, bad signature or unknown format."""


class ArtifactManifest(BaseModel):
    """What the registry signs about one approved model version; immutable, canonical when dumped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Name = MANIFEST_FORMAT
    version_id: Name
    org_id: Name
    ai_module: Name
    semantic_version: Name
    artifact_sha256: Sha256
    artifact_size_bytes: int = Field(ge=0)
    config_sha256: Sha256
    approved_by: Name
    approved_at: AwareDatetime

    @field_validator("approved_at")
    @classmethod
    def _in_utc(cls, moment: datetime) -> datetime:
        moment = moment.astimezone(UTC)
        if moment.year < 2000:  # canonical_timestamp writes four-digit years only from year 1000 on
            raise ValueError("approved_at must be in the year 2000 or later")
        return moment

    @field_serializer("approved_at")
    def _canonical_time(self, moment: datetime) -> str:
        return canonical_timestamp(moment)

    def signed_bytes(self) -> bytes:
        """The bytes a signature covers: the domain prefix, then the manifest's canonical JSON."""
        return _DOMAIN + canonical_json(self.model_dump(mode="json")).encode()


class SignedManifest(BaseModel):
    """A manifest with the id of the key that signed it and the signature (base64url, no padding)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: ArtifactManifest
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    signature: Annotated[str, StringConstraints(min_length=1, max_length=128)]

    def to_json(self) -> bytes:
        """The canonical JSON bytes to store beside the artifact or send to an edge."""
        return canonical_json(self.model_dump(mode="json")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SignedManifest:
        """Parse `to_json` output; MalformedManifest naming every wrong field otherwise (at most 64 KiB)."""
        if len(data) > MAX_SIGNED_MANIFEST_BYTES:
            raise MalformedManifest(
                f"a signed manifest is at most {MAX_SIGNED_MANIFEST_BYTES:,} bytes; this one is {len(data):,}"
            )
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'document'}: {e['msg']}"
                for e in error.errors()
            )
            raise MalformedManifest(f"not a signed artifact manifest: {problems}") from error


class ManifestSigner:
    """Signs manifests with the registry's private key (held only by the registry)."""

    def __init__(self, key: Ed25519Key) -> None:
        self._key = key

    def sign(self, manifest: ArtifactManifest) -> SignedManifest:
        """The manifest with the registry's signature over its domain-separated canonical bytes."""
        signature = self._key.private_key.sign(manifest.signed_bytes())
        return SignedManifest(manifest=manifest, key_id=self._key.key_id, signature=signature_text(signature))


class ManifestVerifier:
    """Checks signed manifests against the registry public keys pinned by the verifier (one or more)."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in public_keys}
        if not self._keys:
            raise SigningKeyError("a manifest verifier needs at least one pinned registry public key")

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> ManifestVerifier:
        """A verifier from configuration: base64url raw public keys."""
        return cls(public_key_from_text(text, "a registry public key") for text in texts)

    def verify(self, signed: SignedManifest) -> ArtifactManifest:
        """The manifest when a pinned key signed it, unchanged, in a known format; ManifestSignatureError."""
        manifest = signed.manifest
        what = f"the manifest of version {manifest.version_id!r}"
        key = self._keys.get(signed.key_id)
        if key is None:
            raise ManifestSignatureError(
                f"{what} is signed by key {signed.key_id!r}, which is not pinned here (pinned: "
                f"{', '.join(sorted(self._keys))}); pin the registry's current public key, or fetch a "
                "manifest the registry signed with a pinned key"
            )
        try:
            key.verify(signature_bytes(signed.signature), manifest.signed_bytes())
        except (InvalidSignature, ValueError) as error:
            raise ManifestSignatureError(
                f"the signature of {what} does not verify under key {signed.key_id!r}: the manifest or "
                "its signature was altered; do not install this artifact, fetch its manifest from the "
                "registry again"
            ) from error
        if manifest.format != MANIFEST_FORMAT:
            raise ManifestSignatureError(
                f"{what} is in format {manifest.format!r}, and this verifier reads only {MANIFEST_FORMAT!r}; "
                "upgrade the verifier before installing it"
            )
        return manifest


def verify_artifact_file(path: Path, signed: SignedManifest, verifier: ManifestVerifier) -> ArtifactManifest:
    """The manifest when it verifies and the file has its size and SHA-256; ManifestSignatureError or
    ArtifactMismatch otherwise. Streams the file once (blocking: call it in a thread from async code)."""
    manifest = verifier.verify(signed)
    check_file(path, manifest.artifact_sha256, manifest.artifact_size_bytes)
    return manifest
