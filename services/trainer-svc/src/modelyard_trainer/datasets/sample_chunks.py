"""Turning a `DownloadSamples` stream of `SampleChunk`s into verified blobs of the dataset cache.

Synchronous and free of gRPC types beyond the chunk's three fields, so the fetcher can run each
step off the event loop and the stream's rules can be read in one place: `sha256` opens a sample
(one that was asked for, once), `last` closes it, and nothing may arrive outside an open sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from modelyard_events.schemas.manifest import ManifestSample
from modelyard_trainer.training.errors import DatasetVersionError
from modelyard_trainer.training.version_cache import BlobWriter, VersionCache, describe


class Chunk(Protocol):
    """The fields of `modelyard.v1.SampleChunk` the receiver reads."""

    @property
    def sha256(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def last(self) -> bool: ...


class SampleReceiver:
    """Writes the samples of one download into `cache`; every refusal is a DatasetVersionError.

    `asked` maps each requested SHA-256 to its manifest sample. Call `receive` per chunk, `finish`
    when the stream ends (it refuses a stream that stopped early), and `abandon` on any other way
    out, so that no temp file is left behind.
    """

    def __init__(self, cache: VersionCache, asked: Mapping[str, ManifestSample], version: str) -> None:
        self._cache, self._asked, self._version = cache, asked, version
        self._open: BlobWriter | None = None
        self.received: set[str] = set()

    def receive(self, chunk: Chunk) -> None:
        """Take one chunk: open a sample on `sha256`, write its bytes, verify and store it on `last`."""
        if chunk.sha256:
            self._start(chunk.sha256)
        if self._open is None:
            raise DatasetVersionError(f"{self._version}: dataset-svc sent bytes that belong to no sample")
        self._open.write(chunk.data)
        if chunk.last:
            writer, self._open = self._open, None
            writer.commit()
            self.received.add(writer.sample.sha256)

    def finish(self) -> None:
        """The stream ended: every sample asked for must have arrived whole."""
        if self._open is not None:
            sample = self._open.sample
            self.abandon()
            raise DatasetVersionError(
                f"{describe(sample)} of {self._version}: the download ended before its last chunk"
            )
        missing = [sample for sha, sample in self._asked.items() if sha not in self.received]
        if missing:
            raise DatasetVersionError(
                f"{self._version}: dataset-svc did not send {len(missing)} of the samples asked for, "
                f"first {describe(missing[0])}"
            )

    def abandon(self) -> None:
        """Drop the sample being received, if any."""
        if self._open is not None:
            self._open.discard()
            self._open = None

    def _start(self, sha256: str) -> None:
        if self._open is not None:
            raise DatasetVersionError(
                f"{describe(self._open.sample)} of {self._version}: dataset-svc began another sample "
                "before this one's last chunk"
            )
        sample = self._asked.get(sha256)
        if sample is None or sha256 in self.received:
            what = "sent twice" if sample is not None else "not asked for"
            raise DatasetVersionError(f"{self._version}: dataset-svc sent bytes for {sha256}, {what}")
        self._open = self._cache.blob_writer(sample)
