"""How much one DatasetService download may carry: the caps dataset-svc enforces and clients obey.

dataset-svc refuses a `DownloadSamples` request for more than MAX_SAMPLES_PER_DOWNLOAD hashes or more
than MAX_BYTES_PER_DOWNLOAD bytes of samples (one sample alone is always served, whatever its size),
and sends every piece of a sample or manifest in messages of at most CHUNK_BYTES, far below gRPC's
4 MiB message limit. Trainers cut what they need with `download_batches`, so the two sides agree by
construction (issue 11, item 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

MAX_SAMPLES_PER_DOWNLOAD: Final = 5000  # 5,000 hashes of 66 bytes: a request far below 4 MiB
MAX_BYTES_PER_DOWNLOAD: Final = 1 << 30  # 1 GiB of samples per call
CHUNK_BYTES: Final = 1 << 20  # 1 MiB per streamed message
MAX_MANIFEST_MESSAGE_BYTES: Final = 3 << 20  # GetManifest's single answer; larger ones are streamed


def download_batches(
    samples: Iterable[tuple[str, int]],
    max_samples: int = MAX_SAMPLES_PER_DOWNLOAD,
    max_bytes: int = MAX_BYTES_PER_DOWNLOAD,
) -> list[list[str]]:
    """(sha256, size_bytes) pairs cut, in order, into requests that fit both caps.

    Each hash goes into one batch only; a sample larger than `max_bytes` is a batch of its own.
    """
    batches: list[list[str]] = []
    batch: list[str] = []
    batch_bytes = 0
    seen: set[str] = set()
    for sha256, size_bytes in samples:
        if sha256 in seen:
            continue
        seen.add(sha256)
        if batch and (len(batch) == max_samples or batch_bytes + size_bytes > max_bytes):
            batches.append(batch)
            batch, batch_bytes = [], 0
        batch.append(sha256)
        batch_bytes += size_bytes
    if batch:
        batches.append(batch)
    return batches


def download_too_large(sample_count: int, total_bytes: int) -> str | None:
    """Why a request for `sample_count` samples of `total_bytes` is refused, or None when it fits."""
    if sample_count > MAX_SAMPLES_PER_DOWNLOAD:
        return (
            f"asks for {sample_count} samples; one call serves at most {MAX_SAMPLES_PER_DOWNLOAD}: "
            "ask in batches"
        )
    if sample_count > 1 and total_bytes > MAX_BYTES_PER_DOWNLOAD:
        return (
            f"asks for {total_bytes} bytes of samples; one call serves at most {MAX_BYTES_PER_DOWNLOAD} "
            "bytes (or a single sample of any size): ask in batches"
        )
    return None
