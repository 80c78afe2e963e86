"""Taking a finished run's artifact into the registry's content-addressed store.

The trainer's run folder stops being the record: the file is copied in, its SHA-256 checked against
the one the job reported on the way, and its config (what an edge needs to run it) read from the
stored copy, never from the run folder, so what is described is what was checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch

from modelyard_artifacts.model_file import MODEL_FORMAT
from modelyard_blobs import BlobStore
from modelyard_events.canonical import canonical_json
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.registry import MAX_CLASSES, ModelConfig

_PROC_FDS = Path("/proc/self/fd").is_dir()  # Linux: reopen an open descriptor by its link
ARTIFACT_FORMAT = MODEL_FORMAT


class ArtifactRefused(ValueError):
    """The reported artifact cannot be registered: outside the allowed folders, unreadable, not ours."""


@dataclass(frozen=True)
class StoredArtifact:
    """An artifact in the registry's store, and its config (also stored, as canonical JSON)."""

    uri: str
    sha256: str
    size_bytes: int
    config: ModelConfig
    metrics: dict[str, float]


def blob_uri(sha256: str) -> str:
    """How the registry names a blob of its own store."""
    return f"registry-blob:sha256:{sha256}"


class ArtifactIntake:
    """Copies artifacts from the trainers' shared folders into the registry's blob store."""

    def __init__(self, blobs: BlobStore, roots: list[Path], max_bytes: int) -> None:
        self._blobs, self._max_bytes = blobs, max_bytes
        self._roots = [root.resolve() for root in roots]

    def source_path(self, uri: str) -> Path:
        """The local file `uri` names, when it is a file:// URI inside an allowed root."""
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ArtifactRefused(
                f"artifact URI {uri[:200]!r} is not a file:// URI of a trainer's run folder"
            )
        path = Path(unquote(parsed.path)).resolve()  # resolves .. and symlinks before the check
        if not any(path.is_relative_to(root) for root in self._roots):
            roots = ", ".join(str(r) for r in self._roots)
            raise ArtifactRefused(f"artifact {path} is outside the trainers' folders ({roots}); refused")
        return path

    async def take(self, uri: str, sha256: str, size_bytes: int) -> StoredArtifact:
        """Copy, check, describe; ArtifactRefused (or BlobIntegrityError) when it cannot be trusted."""
        path = self.source_path(uri)
        if size_bytes > self._max_bytes:
            raise ArtifactRefused(f"artifact of {size_bytes} bytes is over the limit of {self._max_bytes}")
        fd = await asyncio.to_thread(_open_regular_file, path)
        try:
            # Copy from the descriptor checked above (its /proc link reopens that very file), so a
            # symlink or FIFO swapped in after the check is never read.
            opened = Path(f"/proc/self/fd/{fd}") if _PROC_FDS else path
            stored_size = await self._blobs.put_file(opened, sha256, max_bytes=self._max_bytes)
        except InvalidArgument as error:
            raise ArtifactRefused(str(error)) from None
        except OSError as error:  # not transient: the same file would fail the same way forever
            raise ArtifactRefused(f"artifact {path} cannot be read: {error}") from None
        finally:
            os.close(fd)
        raw_config, metrics = await self._read_config(sha256)
        config = await self._store_config(raw_config)
        return StoredArtifact(blob_uri(sha256), sha256, stored_size, config, metrics)

    async def _read_config(self, sha256: str) -> tuple[dict[str, Any], dict[str, float]]:
        local = self._blobs.local_path(sha256)
        data: Path | bytes = local if local is not None else await self._blobs.read(sha256)
        payload = await asyncio.to_thread(_load_payload, data)
        try:
            config = dict(payload["config"])
            metrics = {str(k): float(v) for k, v in dict(payload.get("metrics") or {}).items()}
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactRefused(f"artifact {sha256} has no readable config: {error}") from None
        return config, metrics

    async def _store_config(self, raw: dict[str, Any]) -> ModelConfig:
        try:
            family = str(raw["family"])
            shape = [int(n) for n in raw["input_shape"]]
            labels = raw.get("class_labels")
            features = raw.get("feature_names")
            scaling_kind = str(dict(raw["scaling"]).get("kind", ""))
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactRefused(f"artifact config lacks {error}") from None
        if labels is not None and len(labels) > MAX_CLASSES:
            raise ArtifactRefused(
                f"artifact has {len(labels)} classes; the registry takes at most {MAX_CLASSES}"
            )
        text = canonical_json(raw)
        config_sha256 = await self._blobs.put_bytes(text.encode())
        schema = {"family": family, "input_shape": shape, "feature_names": features}
        return ModelConfig(
            family=family,
            input_shape=shape,
            class_names=None if labels is None else [str(label) for label in labels],
            feature_count=0 if features is None else len(features),
            input_schema_sha256=hashlib.sha256(canonical_json(schema).encode()).hexdigest(),
            preprocessing=scaling_kind,
            config_uri=blob_uri(config_sha256),
            config_sha256=config_sha256,
        )


def _open_regular_file(path: Path) -> int:
    """A read-only descriptor of `path` if it is a regular file (not a symlink, FIFO or folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ArtifactRefused(f"artifact {path} does not exist (is the trainers' folder shared?)") from None
    except OSError as error:
        raise ArtifactRefused(f"artifact {path} cannot be opened: {error}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactRefused(f"artifact {path} is not a regular file")
    return fd


def _load_payload(data: Path | bytes) -> dict[str, Any]:
    import io

    source: Any = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)  # tensors and plain values only
    except Exception as error:  # a damaged or foreign file raises many types
        raise ArtifactRefused(f"the artifact is not a readable model file: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        raise ArtifactRefused(f"the artifact is not a Modelyard model ({ARTIFACT_FORMAT})")
    return payload
