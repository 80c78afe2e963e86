"""Runners of one process that consume the same topic decode each of its messages once (no I/O).

job-svc runs several projections over the trainers' and the jobs' topics, each in its own consumer
group, so every message reaches the process once per runner; decoding it (parsing, one sha256) was
a fifth of the process's time under a metrics load. `decode_message` is a pure function of a
message's bytes and headers, and what it returns is immutable (frozen envelope, frozen head), so
the first runner to get a message decodes it and the others take the same result. It is keyed by
the exact bytes, value and claimed head alike: bytes that differ in anything are decoded again,
and a message that fails to decode is not kept (each runner dead-letters it itself). Each runner
still checks the head's signature against its own source's pinned keys.

An entry is dropped once every other runner of its topic has taken it; runners that lag far apart,
or one that reads a batch again after a failed transaction, find it gone and decode again:
`capacity` bounds the memory whatever they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelyard_events.wire import HEAD_SIGNATURE, Delivered, decode_message

# Entries: a trainer report's message (0.9 KB) and its decoded envelope (4.4 KB) take about 5 KB, so
# about 22 MB at most. Runners of a topic lag up to a few thousand messages apart under load.
CAPACITY = 4096

_Key = tuple[str, bytes, bytes | None]


@dataclass
class _Entry:
    delivered: Delivered
    takers_left: int


class SharedDecodes:
    """Decoded messages of the topics more than one runner of this process consumes."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._readers: dict[str, int] = {}
        self._entries: dict[_Key, _Entry] = {}  # in insertion order: the oldest is dropped first
        self.decoded = 0
        self.shared = 0

    def join(self, topics: Sequence[str]) -> None:
        """A runner starts consuming `topics`."""
        for topic in topics:
            self._readers[topic] = self._readers.get(topic, 0) + 1

    def leave(self, topics: Sequence[str]) -> None:
        """A runner stops consuming `topics`."""
        for topic in topics:
            left = self._readers.get(topic, 0) - 1
            if left > 0:
                self._readers[topic] = left
            else:
                self._readers.pop(topic, None)
        alone = {topic for topic in topics if self._readers.get(topic, 0) < 2}  # no one to share with
        if alone:
            self._entries = {key: entry for key, entry in self._entries.items() if key[0] not in alone}

    def readers(self, topic: str) -> int:
        """How many runners consume `topic` now."""
        return self._readers.get(topic, 0)

    def decode(self, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Delivered:
        """`decode_message(value, headers)`, decoded by whichever runner of `topic` got it first."""
        others = self._readers.get(topic, 0) - 1
        if others < 1 or value is None:
            return self._decode(value, headers)
        claimed = next((v for k, v in headers if k == HEAD_SIGNATURE), None)
        key = (topic, value, claimed)
        entry = self._entries.get(key)
        if entry is not None:
            self.shared += 1
            entry.takers_left -= 1
            if entry.takers_left < 1:
                self._entries.pop(key, None)
            return entry.delivered
        delivered = self._decode(value, headers)
        if len(self._entries) >= self._capacity:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = _Entry(delivered, others)
        return delivered

    def _decode(self, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Delivered:
        self.decoded += 1
        return decode_message(value, headers)

    def __len__(self) -> int:
        return len(self._entries)


shared_decodes = SharedDecodes()
