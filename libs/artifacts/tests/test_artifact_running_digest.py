"""RunningDigest: the SHA-256 of chunks fed in order, batched to a worker thread, resumable from a file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard_artifacts.running_digest import RunningDigest
from modelyard_artifacts.writeback import start_writeback

DATA = os.urandom(9 << 20)  # spans several batches
CHUNKS = [DATA[i : i + 300_001] for i in range(0, len(DATA), 300_001)]


async def test_fed_chunks_give_the_sha256_of_their_concatenation() -> None:
    digest = RunningDigest()
    for chunk in CHUNKS:
        await digest.feed(chunk)
    assert digest.fed == len(DATA)
    assert await digest.hexdigest() == hashlib.sha256(DATA).hexdigest()


async def test_nothing_fed_is_the_sha256_of_nothing() -> None:
    assert await RunningDigest().hexdigest() == hashlib.sha256(b"").hexdigest()


async def test_a_prefix_on_disk_then_the_rest_fed(tmp_path: Path) -> None:
    part = tmp_path / "a.part"
    part.write_bytes(DATA[:5_000_000] + b"bytes past the prefix are not read")
    digest = await RunningDigest.of_prefix(part, 5_000_000)
    assert digest.fed == 5_000_000
    await digest.feed(DATA[5_000_000:])
    assert await digest.hexdigest() == hashlib.sha256(DATA).hexdigest()


async def test_a_file_shorter_than_the_prefix_is_refused(tmp_path: Path) -> None:
    part = tmp_path / "a.part"
    part.write_bytes(b"short")
    with pytest.raises(ValueError, match="fewer than 10 bytes"):
        await RunningDigest.of_prefix(part, 10)


def test_starting_writeback_leaves_the_file_as_written(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with path.open("wb") as file:
        file.write(DATA[: 1 << 20])
        file.flush()
        start_writeback(file.fileno(), 0, 1 << 20)
        start_writeback(file.fileno(), 0, 0)
    assert path.read_bytes() == DATA[: 1 << 20]
