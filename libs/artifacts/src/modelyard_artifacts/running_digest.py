"""The SHA-256 of a file computed while its bytes are being written, off the event loop.

A download that hashes its file only once it is complete reads every byte twice and adds the
hash's time to the transfer's; hashing each chunk in the event loop holds the loop (and the
network) while it runs. Here the chunks are batched and handed, one batch at a time and in order,
to the default executor: hashlib releases the GIL on large buffers, so on a second core the hash
keeps pace with the network. No thread waits on an idle download, and at most two batches are held
in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

_BATCH_BYTES = 4 << 20
_READ_BYTES = 1 << 20


class RunningDigest:
    """SHA-256 of the bytes fed so far, in the order fed; `fed` counts them.

    Start one with `await RunningDigest.of_prefix(path, n)` to cover the first `n` bytes already in a
    file (a resumed download), then `feed` each chunk appended after them.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.fed = 0
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._hashing: asyncio.Future[None] | None = None

    @classmethod
    async def of_prefix(cls, path: Path, size: int) -> RunningDigest:
        """A digest of the first `size` bytes of `path` (OSError or ValueError when it is shorter)."""
        digest = cls()
        if size:
            await asyncio.to_thread(_hash_prefix, digest._sha, path, size)
            digest.fed = size
        return digest

    async def feed(self, chunk: bytes) -> None:
        """Add `chunk`; waits only when the previous batch is still being hashed as the next fills."""
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        self.fed += len(chunk)
        if self._batch_bytes >= _BATCH_BYTES:
            await self._hand_over()

    async def hexdigest(self) -> str:
        """The SHA-256 of every byte fed, once the last batch is hashed."""
        await self._hand_over()
        await self._settle()
        return self._sha.hexdigest()

    async def _hand_over(self) -> None:
        await self._settle()
        if not self._batch:
            return
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._hashing = asyncio.get_running_loop().run_in_executor(None, _update, self._sha, batch)

    async def _settle(self) -> None:
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            await hashing


def _update(sha: Any, batch: list[bytes]) -> None:
    for chunk in batch:
        sha.update(chunk)


def _hash_prefix(sha: Any, path: Path, size: int) -> None:
    left = size
    with path.open("rb") as file:
        while left:
            chunk = file.read(min(_READ_BYTES, left))
            if not chunk:
                raise ValueError(f"{path} holds fewer than {size:,} bytes")
            sha.update(chunk)
            left -= len(chunk)
