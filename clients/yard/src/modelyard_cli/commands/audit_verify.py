"""`yard audit verify`: every service's hash chain and signed heads, read through ReadEvents.

One page in memory at a time; the checks are `modelyard_events.chain_check`'s, the same ones the
library's `verify_chain` runs on the store's rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelyard.v1 import events_pb2
from modelyard_cli.commands.audit_log import AuditError, LogReader, heads_of, served_hash
from modelyard_events.chain_check import BreakKind, ChainBreak, ChainChecker
from modelyard_events.signing import HeadVerifier

# A log read to its end may still have events committed a moment ago whose signature is on its way
# (a few milliseconds): ask again a few times before calling them unsigned.
TAIL_RETRIES = 5
TAIL_WAIT_S = 0.4

Progress = Callable[[str, int, int], None]
"""progress(service, events checked, head position): called after every page."""


@dataclass(frozen=True, slots=True)
class LogVerdict:
    """One service's log: how many events were checked, how far signed, and the first break."""

    service: str
    checked: int
    signed_through: int
    head_position: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        """True when every event links, recomputes and is covered by a verified signed head."""
        return self.broken is None

    def line(self) -> str:
        """What yard prints for this service."""
        if self.broken is None:
            return f"{self.service}: ok: {self.checked} events, signed through {self.signed_through}"
        return (
            f"{self.service}: BROKEN at position {self.broken.position}: {self.broken.reason} "
            f"({self.checked} events verified before it)"
        )


async def verify_log(
    reader: LogReader, keys: HeadVerifier, progress: Progress, *, tail_wait_s: float | None = None
) -> LogVerdict:
    """Read `reader`'s whole log page by page and check it; AuditError when it cannot be read."""
    checker: ChainChecker[events_pb2.EventEnvelope] = ChainChecker(served_hash, keys)
    head, retries, target = 0, 0, None
    while True:
        async for response in reader.pages(checker.last_position):
            head = max(head, response.head_position)
            if checker.feed(response.events, heads_of(response)) is not None:
                return _verdict(reader, checker, head)
            if response.events:
                retries = 0
                progress(reader.service.name, checker.checked, head)
        # ReadEvents serves only events a signed head covers: anything up to `head` beyond what was
        # served is either being signed right now or was appended without the service's key.
        # The log's end is where it was when first reached: a busy service appends all the while.
        target = head if target is None else target
        if checker.last_position >= target or retries >= TAIL_RETRIES:
            break
        retries += 1
        await asyncio.sleep(TAIL_WAIT_S if tail_wait_s is None else tail_wait_s)
    checker.finish(target)
    return _verdict(reader, checker, target)


def _verdict(reader: LogReader, checker: ChainChecker[events_pb2.EventEnvelope], head: int) -> LogVerdict:
    broken = checker.broken
    if broken is not None and broken.kind is BreakKind.SHORT:
        broken = ChainBreak(
            broken.position,
            broken.kind,
            f"events {checker.last_position + 1}..{head} are committed but not served: ReadEvents serves "
            "only events a signed head covers, so they were appended without the service's key (or "
            "the service crashed before signing them and has not started since)",
        )
    return LogVerdict(reader.service.name, checker.checked, checker.signed_through, head, broken)


class ThrottledLines:
    """Progress as lines, at most one per `every_s` per service (a million events fill no screen)."""

    def __init__(self, emit: Callable[[str], None], every_s: float = 1.0) -> None:
        self._emit = emit
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def __call__(self, service: str, checked: int, head: int) -> None:
        now = time.monotonic()
        if now - self._last.get(service, float("-inf")) >= self._every_s:
            self._last[service] = now
            self._emit(f"{service}: {checked} / {head} events checked")


__all__ = ["AuditError", "LogVerdict", "ThrottledLines", "verify_log"]
