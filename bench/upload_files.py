"""The sample files the dataset upload benchmark sends: small PNG images and large MP4-like videos.

Every run gets new random content (`seed` differs), because the blob store keeps one copy per
SHA-256 across all datasets: re-sending the same bytes would measure deduplication, not storage.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIDE = 64  # 64×64 RGB noise: 12,288 raw bytes that PNG cannot shrink much
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"  # an 'ftyp' box at offset 4


@dataclass(frozen=True)
class Workload:
    """One kind of upload: how many files of which kind, and how many go in one UploadSamples call."""

    key: str
    files: int
    files_per_call: int
    video_bytes: int = 0  # 0: PNG images; else each file is an MP4-like file of this size

    @property
    def kind(self) -> str:
        """ "png" or "mp4"."""
        return "mp4" if self.video_bytes else "png"

    def write(self, folder: Path, seed: int) -> list[Path]:
        """Write this workload's files with fresh random content under `folder`; their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        paths = []
        for n in range(self.files):
            path = folder / f"{self.key}-{seed}-{n:05d}.{self.kind}"
            path.write_bytes(_video(rng, self.video_bytes) if self.video_bytes else _png(rng))
            paths.append(path)
        return paths


def _png(rng: np.random.Generator) -> bytes:
    pixels = rng.integers(0, 256, size=(IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _video(rng: np.random.Generator, size_bytes: int) -> bytes:
    # Videos are never decoded, only their signature is checked: random bytes after a real ftyp box.
    return MP4_HEAD + rng.bytes(size_bytes - len(MP4_HEAD))


def total_bytes(paths: Sequence[Path]) -> int:
    """The sum of the files' sizes."""
    return sum(path.stat().st_size for path in paths)


def work_floor(paths: Sequence[Path]) -> dict[str, float]:
    """Seconds this process takes, on one thread, for the per-file work the server must do.

    Reading the (cached) files, SHA-256 of their bytes, and, for images, Pillow's verify + full
    decode as dataset-svc's inspection does: a floor for the server's CPU work, without gRPC.
    """
    floor = {
        "read_s": _timed(lambda: [path.read_bytes() for path in paths]),
        "sha256_s": _timed(lambda: [hashlib.sha256(path.read_bytes()).digest() for path in paths]),
    }
    if paths and paths[0].suffix == ".png":
        floor["pillow_verify_and_decode_s"] = _timed(lambda: [_decode(path) for path in paths])
    return floor


def _decode(path: Path) -> str:
    with Image.open(path, formats=["PNG"]) as image:
        image.verify()
    with Image.open(path, formats=["PNG"]) as image:
        image.load()
        return image.mode


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def fsync_path(path: Path) -> None:
    """fsync a file or a folder."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
