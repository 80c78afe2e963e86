"""A trainer acts only on job events that job-svc signed: forged dispatches on the broker never run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from worker_samples import TRAINER_ID, dispatch_of

from modelyard_events.envelope import Actor, CommandContext, EventEnvelope
from modelyard_events.hashing import envelope_hash
from modelyard_events.schemas.jobs import JOB_STREAM, JobDispatched
from modelyard_events.signing import HeadSigner
from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_KEYS, TEST_SIGNER
from modelyard_events.wire import encode_envelope, message_headers
from modelyard_trainer.worker.job_events import job_events

JOB_SVC = CommandContext(actor=Actor(subject="job-svc", roles=("super_admin",)), org_id="org-1")


@dataclass
class Message:
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()
    topic: str = "modelyard.job.events"
    partition: int = 0
    offset: int = field(default_factory=lambda: uuid.uuid4().int % 1000)


class Topic:
    """What the trainer's consumer yields: messages, in the order a test puts them."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        for message in self._messages:
            yield message


def signed(envelope: EventEnvelope, signer: HeadSigner | None = TEST_SIGNER) -> Message:
    head = None if signer is None else signer.sign(envelope.position, envelope.hash)
    return Message(encode_envelope(envelope), message_headers(envelope, head))


def forged_after(genuine: EventEnvelope, dispatch: JobDispatched) -> EventEnvelope:
    """A dispatch at the next position that links to `genuine`, with a hash a forger can compute."""
    fields = {
        **genuine.model_dump(),
        "event_id": uuid.uuid4(),
        "stream_id": dispatch.job_id,
        "position": genuine.position + 1,
        "data": dispatch.model_dump(mode="json"),
        "prev_hash": genuine.hash,
        "hash": "0" * 64,
    }
    forged = EventEnvelope(**fields)
    return EventEnvelope(**{**fields, "hash": envelope_hash(forged)})


async def received(messages: list[Message]) -> list[str]:
    return [event.job_id async for _, event in job_events(Topic(messages), TEST_KEYS)]  # type: ignore[attr-defined, arg-type]


async def dispatches(*jobs: str) -> list[EventEnvelope]:
    store = InMemoryEventStore()
    envelopes = []
    for job in jobs:
        envelopes += await store.append(JOB_STREAM, job, 0, [dispatch_of(job)], JOB_SVC)
    return envelopes


async def test_a_signed_head_proves_the_events_before_it_each_taken_once() -> None:
    first, second, third = await dispatches("job-1", "job-2", "job-3")

    assert await received([signed(first, None), signed(second, None), signed(third)]) == [
        "job-1",
        "job-2",
        "job-3",
    ]
    # 3 came first (another partition): 2, then 1 linked to it, are proven by the hash 3 names.
    late = [signed(third), signed(first, None), signed(second, None), signed(third), signed(second, None)]
    assert await received(late) == ["job-3", "job-1", "job-2"]


async def test_a_forged_dispatch_is_never_taken_whatever_it_claims() -> None:
    [genuine] = await dispatches("job-1")
    local_file = dispatch_of("job-evil", trainer_id=TRAINER_ID, dataset_uri="file:///etc/shadow")
    forged = forged_after(genuine, local_file)

    unsigned = await received([signed(genuine), signed(forged, None)])
    wrong_key = await received([signed(genuine), signed(forged, OTHER_SIGNER)])
    bogus_hash = EventEnvelope(**{**forged.model_dump(), "hash": "f" * 64})
    bad_hash = await received([signed(genuine), Message(encode_envelope(bogus_hash))])

    assert unsigned == wrong_key == bad_hash == ["job-1"]


async def test_a_genuine_dispatch_takes_the_place_a_forgery_held() -> None:
    first, second = await dispatches("job-1", "job-2")
    impostor = forged_after(first, dispatch_of("job-evil"))

    taken = await received([signed(first), signed(impostor, None), signed(second)])

    assert taken == ["job-1", "job-2"]
