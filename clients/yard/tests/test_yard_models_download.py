"""`yard models download` against the registry's real download endpoint (modelyard_artifacts'
download_app, URLs and manifests signed with a real key), and `yard models verify`, offline, refusing
every file or manifest that is not what the registry signed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from registry_fakes import (
    OTHER_KEY,
    REGISTRY_KEY,
    DownloadEndpoint,
    FakeRegistrySvc,
    model_version,
    signed_manifest,
)
from yard_runner import Yard

ARTIFACT = hashlib.sha256(b"weights").digest() * 40_000  # 1.28 MB: more than one read chunk
SHA256 = hashlib.sha256(ARTIFACT).hexdigest()
PIN = ("--public-key", REGISTRY_KEY.public_text())
VERIFIED = f"verified: digits 1.2.0 (mv-1), approved by bob at 2026-01-02 12:00:01Z, sha256 {SHA256}, 1.3 MB"


@pytest.fixture
def approved(registry_svc: FakeRegistrySvc, downloads: DownloadEndpoint) -> FakeRegistrySvc:
    """registry-svc hands out a URL for ARTIFACT and its manifest, signed by the registry."""
    registry_svc.download_url = downloads.grant(ARTIFACT, signed_manifest(ARTIFACT))
    return registry_svc


class TestDownload:
    def test_an_approved_version_lands_at_module_semver_with_its_verified_manifest(
        self, registry_yard: Yard, approved: FakeRegistrySvc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        result = registry_yard("models", "download", "mv-1", *PIN)
        assert result.exit_code == 0, result.output
        assert (tmp_path / "digits-1.2.0.pt").read_bytes() == ARTIFACT
        saved = json.loads((tmp_path / "digits-1.2.0.pt.manifest.json").read_text())
        assert saved["manifest"]["artifact_sha256"] == SHA256
        assert result.stdout.splitlines() == [
            f"downloaded mv-1 to digits-1.2.0.pt: 1.3 MB, sha256 {SHA256}",
            f"manifest digits-1.2.0.pt.manifest.json: signature verified (key {REGISTRY_KEY.key_id}), "
            "approved by bob at 2026-01-02 12:00:01Z",
        ]
        assert approved.requests("GetDownloadUrl")[0].version_id == "mv-1"
        assert approved.requests("GetVersion") == []  # the manifest names the file

    def test_without_a_pinned_key_the_manifest_is_saved_unverified_and_verify_checks_it_later(
        self, registry_yard: Yard, approved: FakeRegistrySvc, tmp_path: Path
    ) -> None:
        path = tmp_path / "models" / "m.pt"
        result = registry_yard("models", "download", "mv-1", "--output", str(path))
        assert result.exit_code == 0, result.output
        assert path.read_bytes() == ARTIFACT
        assert "saved, NOT verified" in result.stdout
        assert f"yard models verify {path} --public-key KEY" in result.stderr
        verified = registry_yard("models", "verify", str(path), *PIN)
        assert (verified.exit_code, verified.stdout.strip()) == (0, VERIFIED)

    def test_keys_pinned_in_the_environment_verify_the_manifest(
        self, registry_yard: Yard, approved: FakeRegistrySvc, tmp_path: Path
    ) -> None:
        env = {
            "MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps(
                [OTHER_KEY.public_text(), REGISTRY_KEY.public_text()]
            )
        }
        result = registry_yard("models", "download", "mv-1", "--output", str(tmp_path / "m.pt"), env=env)
        assert result.exit_code == 0, result.output
        assert "signature verified" in result.stdout

    def test_a_manifest_signed_by_an_unpinned_key_stops_the_download_before_any_byte(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc, downloads: DownloadEndpoint, tmp_path: Path
    ) -> None:
        registry_svc.download_url = downloads.grant(ARTIFACT, signed_manifest(ARTIFACT, key=OTHER_KEY))
        path = tmp_path / "m.pt"
        result = registry_yard("models", "download", "mv-1", "--output", str(path), *PIN)
        assert result.exit_code == 1
        assert "not pinned here" in result.stderr
        assert list(tmp_path.glob("m.pt*")) == []

    def test_a_manifest_naming_other_bytes_than_the_url_stops_the_download(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc, downloads: DownloadEndpoint, tmp_path: Path
    ) -> None:
        registry_svc.download_url = downloads.grant(ARTIFACT, signed_manifest(b"other weights"))
        path = tmp_path / "m.pt"
        result = registry_yard("models", "download", "mv-1", "--output", str(path))
        assert result.exit_code == 1
        assert "nothing was downloaded" in result.stderr
        assert list(tmp_path.glob("m.pt*")) == []

    def test_bytes_that_are_not_the_artifact_are_never_installed(
        self, registry_yard: Yard, registry_svc: FakeRegistrySvc, downloads: DownloadEndpoint, tmp_path: Path
    ) -> None:
        registry_svc.download_url = downloads.grant(ARTIFACT, signed_manifest(ARTIFACT))
        blob = downloads.blobs.root / SHA256
        blob.write_bytes(b"X" + ARTIFACT[1:])  # the store's copy went bad: same size, other bytes
        path = tmp_path / "m.pt"
        result = registry_yard("models", "download", "mv-1", "--output", str(path), *PIN)
        assert result.exit_code == 1
        assert "do not install it" in result.stderr
        assert list(tmp_path.glob("m.pt*")) == []

    def test_a_version_without_manifest_is_named_by_getversion_and_said_unapproved(
        self,
        registry_yard: Yard,
        registry_svc: FakeRegistrySvc,
        downloads: DownloadEndpoint,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        registry_svc.download_url = downloads.grant(ARTIFACT)
        registry_svc.version = model_version(ai_module="../evil", semantic_version="0.1.0")
        monkeypatch.chdir(tmp_path)
        result = registry_yard("models", "download", "mv-1")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "_evil-0.1.0.pt").read_bytes() == ARTIFACT  # no path out of the folder
        assert "mv-1 is not approved" in result.stderr

    def test_a_url_refused_by_the_endpoint_ends_with_its_reason(
        self, registry_yard: Yard, approved: FakeRegistrySvc, tmp_path: Path
    ) -> None:
        result = registry_yard(
            "--token", "someone-else", "models", "download", "mv-1", "--output", str(tmp_path / "m.pt")
        )
        assert result.exit_code == 2
        assert "HTTP 403: this URL needs the bearer token of the caller it was issued to" in result.stderr

    def test_json_names_the_file_the_manifest_and_whether_it_verified(
        self, registry_yard: Yard, approved: FakeRegistrySvc, tmp_path: Path
    ) -> None:
        path = tmp_path / "m.pt"
        result = registry_yard("--json", "models", "download", "mv-1", "--output", str(path), *PIN)
        document = json.loads(result.stdout)
        assert document["path"] == str(path)
        assert document["manifest_path"] == f"{path}.manifest.json"
        assert document["manifest_verified"] is True
        assert (document["manifest"]["approved_by"], document["manifest"]["key_id"]) == (
            "bob",
            REGISTRY_KEY.key_id,
        )
        assert result.stderr == ""  # no progress beside JSON


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """ARTIFACT with the registry's signed manifest beside it."""
    path = tmp_path / "digits-1.2.0.pt"
    path.write_bytes(ARTIFACT)
    (tmp_path / "digits-1.2.0.pt.manifest.json").write_bytes(signed_manifest(ARTIFACT).to_json())
    return path


def manifest_of(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


class TestVerify:
    def test_a_file_and_manifest_the_registry_signed_verify(self, offline_yard: Yard, artifact: Path) -> None:
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert (result.exit_code, result.stdout.strip()) == (0, VERIFIED)

    def test_json_is_the_manifest_with_its_key(self, offline_yard: Yard, artifact: Path) -> None:
        document = json.loads(offline_yard("--json", "models", "verify", str(artifact), *PIN).stdout)
        assert document["verified"] is True
        assert (document["version_id"], document["artifact_sha256"], document["key_id"]) == (
            "mv-1",
            SHA256,
            REGISTRY_KEY.key_id,
        )
        assert document["approved_at"] == "2026-01-02T12:00:01.000000Z"  # canonical, as signed

    def test_a_file_with_one_byte_changed_is_refused(self, offline_yard: Yard, artifact: Path) -> None:
        data = bytearray(ARTIFACT)
        data[len(data) // 2] ^= 0x01
        artifact.write_bytes(bytes(data))
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert f"expected SHA-256 {SHA256}" in result.stderr

    def test_a_truncated_file_is_refused_by_its_size(self, offline_yard: Yard, artifact: Path) -> None:
        artifact.write_bytes(ARTIFACT[:-1])
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert f"expected {len(ARTIFACT):,} bytes" in result.stderr

    def test_a_manifest_signed_by_another_key_is_refused(self, offline_yard: Yard, artifact: Path) -> None:
        manifest_of(artifact).write_bytes(signed_manifest(ARTIFACT, key=OTHER_KEY).to_json())
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert f"signed by key '{OTHER_KEY.key_id}', which is not pinned here" in result.stderr

    def test_an_edited_manifest_field_breaks_the_signature(self, offline_yard: Yard, artifact: Path) -> None:
        document = json.loads(manifest_of(artifact).read_text())
        document["manifest"]["approved_by"] = "mallory"
        manifest_of(artifact).write_text(json.dumps(document))
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert "does not verify" in result.stderr

    def test_a_missing_manifest_is_refused(self, offline_yard: Yard, artifact: Path) -> None:
        manifest_of(artifact).unlink()
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert f"cannot read the manifest {manifest_of(artifact)}" in result.stderr

    def test_a_malformed_manifest_is_refused(self, offline_yard: Yard, artifact: Path) -> None:
        manifest_of(artifact).write_text('{"manifest": {}}')
        result = offline_yard("models", "verify", str(artifact), *PIN)
        assert result.exit_code == 1
        assert "not a signed artifact manifest" in result.stderr

    def test_a_missing_file_is_refused(self, offline_yard: Yard, artifact: Path, tmp_path: Path) -> None:
        elsewhere = tmp_path / "gone.pt"
        result = offline_yard(
            "models", "verify", str(elsewhere), "--manifest", str(manifest_of(artifact)), *PIN
        )
        assert result.exit_code == 1
        assert f"cannot read {elsewhere}" in result.stderr

    def test_the_manifest_option_names_a_manifest_elsewhere(
        self, offline_yard: Yard, artifact: Path, tmp_path: Path
    ) -> None:
        moved = manifest_of(artifact).rename(tmp_path / "signed.json")
        result = offline_yard("models", "verify", str(artifact), "--manifest", str(moved), *PIN)
        assert result.exit_code == 0, result.output

    def test_without_a_pinned_key_nothing_is_verified(self, offline_yard: Yard, artifact: Path) -> None:
        result = offline_yard("models", "verify", str(artifact))
        assert result.exit_code == 2
        assert "MODELYARD_REGISTRY_PUBLIC_KEYS" in result.stderr

    def test_keys_from_the_environment_are_a_json_list(self, offline_yard: Yard, artifact: Path) -> None:
        pinned = {"MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps([REGISTRY_KEY.public_text()])}
        assert offline_yard("models", "verify", str(artifact), env=pinned).exit_code == 0
        unlisted = {"MODELYARD_REGISTRY_PUBLIC_KEYS": REGISTRY_KEY.public_text()}
        result = offline_yard("models", "verify", str(artifact), env=unlisted)
        assert result.exit_code == 2
        assert "must be a JSON list" in result.stderr

    def test_a_malformed_key_is_a_usage_error(self, offline_yard: Yard, artifact: Path) -> None:
        result = offline_yard("models", "verify", str(artifact), "--public-key", "not-a-key")
        assert result.exit_code == 2
        assert "a registry public key" in result.stderr
