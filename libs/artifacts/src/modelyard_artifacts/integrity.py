"""What an artifact's bytes must be: its size and SHA-256, checked by streaming the file once."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SHA256_PATTERN = r"^[0-9a-f]{64}$"
_SHA256 = re.compile(SHA256_PATTERN)
_READ_BYTES = 1 << 20


class ArtifactMismatch(ValueError):
    """An artifact's bytes are not the ones its manifest or download promised; never install it."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(
            f"{what}: expected {expected}, got {actual}; the file is not the artifact it claims to be "
            "(corrupted or substituted): do not install it, download it again"
        )
        self.expected = expected
        self.actual = actual


def is_sha256(text: str) -> bool:
    """Whether `text` is a SHA-256 as Modelyard writes one: 64 lowercase hex digits."""
    return _SHA256.fullmatch(text) is not None


def file_digest(path: Path) -> tuple[int, str]:
    """The size in bytes and the SHA-256 (hex) of a file, read in 1 MiB chunks (blocking: use a thread)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def check_file(
    path: Path,
    expected_sha256: str,
    expected_size: int | None,
    *,
    what: str = "",
    sha256_of_file: str | None = None,
) -> None:
    """Return when the file at `path` has that size (when given) and SHA-256; ArtifactMismatch, naming
    `what` (default: the path), otherwise.

    The size is compared first, from the file system, so a truncated file is refused without reading it.
    `sha256_of_file`, when the caller hashed the bytes as it wrote them, spares reading the file again.
    """
    what = what or str(path)
    if expected_size is not None and (size := path.stat().st_size) != expected_size:
        raise ArtifactMismatch(what, f"{expected_size:,} bytes", f"{size:,} bytes")
    if sha256_of_file is None:
        size, sha256 = file_digest(path)
    else:
        size, sha256 = path.stat().st_size, sha256_of_file
    if sha256 != expected_sha256:
        raise ArtifactMismatch(what, f"SHA-256 {expected_sha256}", f"SHA-256 {sha256} ({size:,} bytes)")
