"""Runners of one process that consume the same topic decode each of its messages once (no I/O).

job-svc runs several projections over the trainers' and the jobs' topics, each in its own consumer
group, so every message reaches the process once per runner; decoding it (parsing, one sha256) was
a fifth of the process's time under a metrics load. `decode_message` is a pure function of a
message's bytes and headers, and what it returns does not change (frozen envelope, frozen head; the
payload only caches what follows from its text), so the first runner to get a message decodes it
and the others take the same result (and the event its payload validates into, which the registry
keeps on the payload: `StoredPayload.event`). It is keyed by the exact bytes, value and claimed
head alike: bytes that differ in anything are decoded again, and a message that fails to decode is
not kept (each runner dead-letters it itself). Each runner still checks the head's signature
against its own source's pinned keys.

An entry is dropped once every other runner of its topic has taken it. Runners that lag far apart,
one that reads a batch again after a failed transaction, or runners whose consumer groups gave them
different partitions (two replicas of a service: an entry none of the others will ever take) only
cost memory up to `budget` bytes, oldest dropped first; a message larger than `largest` bytes (a
bulk sample import's, decoded into several hundred KB) is decoded by each runner alone, so a
broker sending large messages cannot fill the process either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard_events.wire import Delivered, claimed_head, decode_message

# What an entry costs, per byte of its message (tracemalloc): a trainer report's 0.97 KB message
# decodes into 4.1 KB and its validated event (kept on the payload by the registry once a runner has
# applied it) adds 1.7 KB, 6× in all; a 4.3 KB or 12.7 KB SamplesAdded takes 7× decoded and 14× with
# its event. The larger factor holds for both; the message's bytes are the key (and the ones a
# decoded payload keeps for encode_envelope: the same object).
FOOTPRINT_PER_BYTE = 14
BUDGET_BYTES = 64 * 1024 * 1024  # about 4,900 trainer reports: runners lag up to a few thousand apart
LARGEST_BYTES = 16 * 1024

_Key = tuple[str, bytes, bytes | None]


@dataclass
class _Entry:
    delivered: Delivered
    takers_left: int
    footprint: int


class SharedDecodes:
    """Decoded messages of the topics more than one runner of this process consumes."""

    def __init__(self, budget: int = BUDGET_BYTES, largest: int = LARGEST_BYTES) -> None:
        self._budget, self._largest = budget, largest
        self._readers: dict[str, int] = {}
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()  # the oldest is dropped first
        self._footprint = 0
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
        for key in [key for key in self._entries if key[0] in alone]:
            self._drop(key)

    def readers(self, topic: str) -> int:
        """How many runners consume `topic` now."""
        return self._readers.get(topic, 0)

    def decode(self, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Delivered:
        """`decode_message(value, headers)`, decoded by whichever runner of `topic` got it first."""
        others = self._readers.get(topic, 0) - 1
        if others < 1 or value is None or len(value) > self._largest:
            return self._decode(value, headers)
        key = (topic, value, claimed_head(headers))
        entry = self._entries.get(key)
        if entry is not None:
            self.shared += 1
            entry.takers_left -= 1
            if entry.takers_left < 1:
                self._drop(key)
            return entry.delivered
        delivered = self._decode(value, headers)
        footprint = FOOTPRINT_PER_BYTE * len(value)
        while self._entries and self._footprint + footprint > self._budget:
            _, oldest = self._entries.popitem(last=False)
            self._footprint -= oldest.footprint
        self._entries[key] = _Entry(delivered, others, footprint)
        self._footprint += footprint
        return delivered

    @property
    def footprint(self) -> int:
        """The estimated bytes the kept entries take."""
        return self._footprint

    def _drop(self, key: _Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._footprint -= entry.footprint

    def _decode(self, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Delivered:
        self.decoded += 1
        return decode_message(value, headers)

    def __len__(self) -> int:
        return len(self._entries)


shared_decodes = SharedDecodes()
