"""What `yard models download | verify` print about an artifact file and its signed manifest."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path
from typing import Any

from modelyard_artifacts.manifest import ArtifactManifest
from modelyard_cli.render.values import format_bytes

_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._+-]+")


def artifact_file_name(ai_module: str, semantic_version: str) -> str:
    """`digits-1.2.0.pt`: a file name of the current folder whatever the server named the module (no
    separators, no leading dot)."""
    return _UNSAFE_IN_FILE_NAMES.sub("_", f"{ai_module}-{semantic_version}").lstrip(".") + ".pt"


def manifest_path_for(artifact: Path) -> Path:
    """Where a signed manifest lives: beside the artifact, `<artifact>.manifest.json`."""
    return artifact.with_name(artifact.name + ".manifest.json")


def approval_text(manifest: ArtifactManifest) -> str:
    """`approved by bob at 2026-01-02 12:00:01Z`."""
    return f"approved by {manifest.approved_by} at {manifest.approved_at.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def verified_line(manifest: ArtifactManifest) -> str:
    """`verified: digits 1.2.0 (mv-1), approved by bob at …, sha256 …, 12.3 kB`."""
    return (
        f"verified: {manifest.ai_module} {manifest.semantic_version} ({manifest.version_id}), "
        f"{approval_text(manifest)}, sha256 {manifest.artifact_sha256}, "
        f"{format_bytes(manifest.artifact_size_bytes)}"
    )


def downloaded_line(version_id: str, path: Path, sha256: str, size_bytes: int) -> str:
    """`downloaded mv-1 to digits-1.2.0.pt: 12.3 kB, sha256 …`."""
    return f"downloaded {version_id} to {path}: {format_bytes(size_bytes)}, sha256 {sha256}"


def manifest_document(manifest: ArtifactManifest, key_id: str) -> dict[str, Any]:
    """A verified manifest for `--json`: its fields and the id of the key that signed it."""
    return {**manifest.model_dump(mode="json"), "key_id": key_id}
