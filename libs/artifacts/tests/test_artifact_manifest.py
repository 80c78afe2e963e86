"""Signed manifests: what verifies, what is refused and why, and the file check against them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from artifact_support import OTHER_KEY, REGISTRY_KEY
from hypothesis import given
from hypothesis import strategies as st

from modelyard_artifacts.integrity import ArtifactMismatch
from modelyard_artifacts.manifest import (
    MAX_SIGNED_MANIFEST_BYTES,
    ArtifactManifest,
    MalformedManifest,
    ManifestSignatureError,
    ManifestSigner,
    ManifestVerifier,
    SignedManifest,
    verify_artifact_file,
)

ARTIFACT = b"model weights " * 1000


def _manifest(**changes: object) -> ArtifactManifest:
    fields: dict[str, object] = {
        "version_id": "mv-1",
        "org_id": "org-1",
        "ai_module": "defects",
        "semantic_version": "1.4.0",
        "artifact_sha256": hashlib.sha256(ARTIFACT).hexdigest(),
        "artifact_size_bytes": len(ARTIFACT),
        "config_sha256": hashlib.sha256(b"config").hexdigest(),
        "approved_by": "user/alice",
        "approved_at": datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC),
    }
    return ArtifactManifest.model_validate(fields | changes)


SIGNER = ManifestSigner(REGISTRY_KEY)
VERIFIER = ManifestVerifier([REGISTRY_KEY.public_key])


def _altered(signed: SignedManifest, field: str, value: object) -> SignedManifest:
    document = json.loads(signed.to_json())
    document["manifest"][field] = value
    return SignedManifest.from_json(json.dumps(document).encode())


class TestSigning:
    def test_a_signed_manifest_verifies_after_a_json_round_trip(self) -> None:
        signed = SIGNER.sign(_manifest())
        assert VERIFIER.verify(SignedManifest.from_json(signed.to_json())) == _manifest()
        assert signed.key_id == REGISTRY_KEY.key_id

    def test_the_json_is_canonical_with_the_time_in_utc(self) -> None:
        text = SIGNER.sign(_manifest()).to_json().decode()
        assert '"approved_at":"2026-12-01T09:30:00.123456Z"' in text
        assert '"format":"modelyard.artifact-manifest/1"' in text
        assert " " not in text

    def test_a_time_given_in_another_zone_signs_the_same_instant(self) -> None:
        elsewhere = datetime(2026, 12, 1, 11, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        assert _manifest(approved_at=elsewhere).signed_bytes() == _manifest().signed_bytes()

    def test_the_signature_is_domain_separated(self) -> None:
        assert _manifest().signed_bytes().startswith(b"modelyard.v1.artifact-manifest\n{")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("version_id", "mv-2"),
            ("org_id", "org-2"),
            ("ai_module", "other"),
            ("semantic_version", "1.4.1"),
            ("artifact_sha256", "f" * 64),
            ("artifact_size_bytes", len(ARTIFACT) + 1),
            ("config_sha256", "e" * 64),
            ("approved_by", "user/mallory"),
            ("approved_at", "2026-12-01T09:30:01.123456Z"),
            ("format", "modelyard.artifact-manifest/2"),
        ],
    )
    def test_altering_any_field_is_refused(self, field: str, value: object) -> None:
        with pytest.raises(ManifestSignatureError, match=r"does not verify.*do not install"):
            VERIFIER.verify(_altered(SIGNER.sign(_manifest()), field, value))

    def test_an_altered_signature_is_refused(self) -> None:
        signed = SIGNER.sign(_manifest())
        flipped = ("B" if signed.signature[0] == "A" else "A") + signed.signature[1:]
        with pytest.raises(ManifestSignatureError, match="does not verify"):
            VERIFIER.verify(signed.model_copy(update={"signature": flipped}))

    def test_a_manifest_signed_by_an_unpinned_key_is_refused(self) -> None:
        signed = ManifestSigner(OTHER_KEY).sign(_manifest())
        with pytest.raises(ManifestSignatureError, match=f"key '{OTHER_KEY.key_id}'.*not pinned.*pin the"):
            VERIFIER.verify(signed)

    def test_a_rotated_key_verifies_while_both_are_pinned(self) -> None:
        both = ManifestVerifier.from_texts([REGISTRY_KEY.public_text(), OTHER_KEY.public_text()])
        assert both.verify(ManifestSigner(OTHER_KEY).sign(_manifest())) == _manifest()

    def test_a_signed_manifest_in_an_unknown_format_is_refused(self) -> None:
        signed = SIGNER.sign(_manifest(format="modelyard.artifact-manifest/2"))
        with pytest.raises(
            ManifestSignatureError, match=r"reads only 'modelyard\.artifact-manifest/1'.*upgrade"
        ):
            VERIFIER.verify(signed)


class TestParsing:
    @pytest.mark.parametrize(
        ("data", "names"),
        [
            (b"not json", "document"),
            (b"[]", "document"),
            (b'{"key_id": "k", "signature": "s"}', "manifest"),
        ],
    )
    def test_malformed_input_says_what_is_wrong(self, data: bytes, names: str) -> None:
        with pytest.raises(MalformedManifest, match=f"not a signed artifact manifest: {names}"):
            SignedManifest.from_json(data)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("artifact_sha256", "ABC"),
            ("artifact_size_bytes", -1),
            ("approved_at", "2026-12-01T09:30:00"),
            ("approved_at", "1999-12-31T23:59:59.000000Z"),
        ],
    )
    def test_a_wrong_field_is_named(self, field: str, value: object) -> None:
        with pytest.raises(MalformedManifest, match=f"manifest.{field}"):
            _altered(SIGNER.sign(_manifest()), field, value)

    def test_an_unknown_field_is_refused(self) -> None:
        with pytest.raises(MalformedManifest, match=r"manifest\.extra: Extra inputs"):
            _altered(SIGNER.sign(_manifest()), "extra", 1)

    def test_input_over_64_kib_is_refused_before_parsing(self) -> None:
        with pytest.raises(MalformedManifest, match="at most 65,536 bytes"):
            SignedManifest.from_json(b" " * (MAX_SIGNED_MANIFEST_BYTES + 1))

    @given(
        names=st.lists(st.text(min_size=1, max_size=40), min_size=5, max_size=5),
        size=st.integers(min_value=0, max_value=2**53),
        moment=st.datetimes(min_value=datetime(2000, 1, 2), timezones=st.just(UTC)),
    )
    def test_any_manifest_round_trips_and_verifies(
        self, names: list[str], size: int, moment: datetime
    ) -> None:
        manifest = _manifest(
            version_id=names[0],
            org_id=names[1],
            ai_module=names[2],
            semantic_version=names[3],
            approved_by=names[4],
            artifact_size_bytes=size,
            approved_at=moment,
        )
        assert VERIFIER.verify(SignedManifest.from_json(SIGNER.sign(manifest).to_json())) == manifest


class TestArtifactFile:
    def test_the_file_the_manifest_names_verifies(self, tmp_path: Path) -> None:
        (tmp_path / "model.bin").write_bytes(ARTIFACT)
        assert verify_artifact_file(tmp_path / "model.bin", SIGNER.sign(_manifest()), VERIFIER) == _manifest()

    def test_a_changed_byte_names_both_hashes(self, tmp_path: Path) -> None:
        (tmp_path / "model.bin").write_bytes(b"M" + ARTIFACT[1:])
        with pytest.raises(
            ArtifactMismatch, match=f"expected SHA-256 {_manifest().artifact_sha256}, got SHA-256"
        ):
            verify_artifact_file(tmp_path / "model.bin", SIGNER.sign(_manifest()), VERIFIER)

    def test_a_truncated_file_names_both_sizes(self, tmp_path: Path) -> None:
        (tmp_path / "model.bin").write_bytes(ARTIFACT[:-1])
        with pytest.raises(ArtifactMismatch, match="expected 14,000 bytes, got 13,999 bytes"):
            verify_artifact_file(tmp_path / "model.bin", SIGNER.sign(_manifest()), VERIFIER)

    def test_the_signature_is_checked_before_the_file(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestSignatureError):
            verify_artifact_file(tmp_path / "absent", ManifestSigner(OTHER_KEY).sign(_manifest()), VERIFIER)
