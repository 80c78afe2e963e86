"""Which events a consumer may apply: those that link to a verified signed head (no I/O).

Two ways in. Forward, for a projection that has applied a source through (position, hash): events
that extend that chain one by one, up to the last one whose hash a verified signed head names
(`verified_prefix`). Backward, for a consumer that starts at the end of a topic with no checkpoint
(a trainer): from a verified head, every event whose hash the next one's `prev_hash` names
(`linked_back_from`). Either way, an event that its source did not append cannot be reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import EventStoreError
from modelyard_events.signing import ForgedEvent, HeadVerifier, SignedHead
from modelyard_events.wire import checked_envelope


class SourceTampered(EventStoreError):
    """What a source's own log serves does not verify: a consumer must not apply it (run verify)."""


def verified_heads(heads: Iterable[SignedHead], keys: HeadVerifier) -> dict[int, str]:
    """position → hash for every head whose signature verifies; ForgedEvent on the first that does not."""
    verified: dict[int, str] = {}
    for head in heads:
        keys.check(head)
        verified[head.position] = head.hash
    return verified


def verified_prefix(
    events: list[EventEnvelope], position: int, last_hash: str, heads: Mapping[int, str]
) -> list[EventEnvelope]:
    """The longest run of `events` that extends (position, last_hash) and ends at a head in `heads`.

    `events` must be consecutive from position + 1 and each must link to its predecessor;
    `heads` maps positions to the hashes verified signatures vouch for.
    """
    cut = 0
    for index, envelope in enumerate(events):
        if envelope.position != position + 1 or envelope.prev_hash != last_hash:
            break
        position, last_hash = envelope.position, envelope.hash
        if heads.get(position) == last_hash:
            cut = index + 1
    return events[:cut]


def verified_page(
    source: str,
    events: list[EventEnvelope],
    heads: Iterable[SignedHead],
    position: int,
    last_hash: str,
    keys: HeadVerifier,
    *,
    hashes_checked: bool = False,
) -> list[EventEnvelope]:
    """A page read from a source's own log, checked whole: SourceTampered unless every event verifies.

    Each event's hash must recompute from its content (done here unless the reader already did:
    `hashes_checked`), the page must extend (position, last_hash) and its last event must be named
    by a head signed with a pinned key.
    """
    try:
        for envelope in [] if hashes_checked else events:
            checked_envelope(envelope)
        signed = verified_heads(heads, keys)
    except ForgedEvent as error:
        raise SourceTampered(f"{source}: {error}; the log was altered (run verify)") from error
    run = verified_prefix(events, position, last_hash, signed)
    if len(run) != len(events):
        at = events[len(run)].position
        raise SourceTampered(
            f"{source}: events after position {position} do not link to a head signed with a "
            f"pinned key (first unverified: {at}); the log was altered or its key is not pinned"
        )
    return run


def linked_back_from(head_position: int, by_position: Mapping[int, EventEnvelope]) -> list[EventEnvelope]:
    """The events that link back from the (verified) event at `head_position`, ascending.

    Stops below the first missing position or broken link; events below it stay unproven.
    """
    run = [by_position[head_position]]
    while (previous := by_position.get(run[-1].position - 1)) is not None:
        if previous.hash != run[-1].prev_hash:
            break
        run.append(previous)
    run.reverse()
    return run
