"""GetDispatch's answer: whose a dispatch is, read from the job's stream in job-svc's store.

trainer-svc asks before it stores a dispatch's first report (its first writer is its only writer).
"""

from __future__ import annotations

import pytest
from job_builders import LEASE_TTL, NOW, create_request, queued_job

from modelyard_events.domain_errors import InvalidFields, NotFound
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.schemas.jobs import JOB_STREAM, TRAINER_STREAM, DispatchRecord, TrainerRegistered
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_job.app.dispatches import recorded_dispatch
from modelyard_job.domain import TrainingJob

JOB = create_request()["job_id"]
CONTEXT = CommandContext(actor=Actor(subject="job-svc", roles=("super_admin",)), org_id="org-1")


async def store_with_two_dispatches() -> InMemoryEventStore:
    """The job dispatched to t-1 (its lease lapsed, requeued) and then to t-2."""
    store = InMemoryEventStore()
    events = TrainingJob.create(**create_request())
    first = queued_job().dispatch(trainer_id="t-1", dispatch_id="d-1", now=NOW, lease_ttl=LEASE_TTL)
    job = TrainingJob.rebuild(JOB, [*events, *first])
    lapsed = job.expire_lease("d-1")
    job = TrainingJob.rebuild(JOB, [*events, *first, *lapsed])
    second = job.dispatch(trainer_id="t-2", dispatch_id="d-2", now=NOW, lease_ttl=LEASE_TTL)
    await store.append(JOB_STREAM, JOB, 0, [*events, *first, *lapsed, *second], CONTEXT)
    return store


async def test_each_dispatch_of_the_job_names_its_trainer_attempt_and_organization() -> None:
    store = await store_with_two_dispatches()
    recorded = {
        e.data.get("dispatch_id"): e for e in await store.read_stream(JOB) if e.type == "JobDispatched"
    }

    found = [await recorded_dispatch(store, JOB, d) for d in ("d-1", "d-2")]

    ids = {d: (str(e.event_id), e.correlation_id) for d, e in recorded.items()}
    assert found == [
        DispatchRecord(JOB, "d-1", 1, "t-1", "org-1", *ids["d-1"]),
        DispatchRecord(JOB, "d-2", 1, "t-2", "org-1", *ids["d-2"]),  # a lapsed lease: same attempt
    ]
    assert ids["d-1"][0] != ids["d-2"][0]


@pytest.mark.parametrize(
    ("job_id", "dispatch_id"),
    [(JOB, "d-9"), ("j-other", "d-1"), ("trainer/t-1", "d-1")],
    ids=["unknown-dispatch", "another-job", "a-trainer-stream"],
)
async def test_a_dispatch_the_job_never_had_is_not_found(job_id: str, dispatch_id: str) -> None:
    store = await store_with_two_dispatches()
    registered = TrainerRegistered(trainer_id="t-1", slots_total=1, gpus=[])
    await store.append(TRAINER_STREAM, "trainer/t-1", 0, [registered], CONTEXT)

    with pytest.raises(NotFound, match=f"job {job_id} has no dispatch {dispatch_id}"):
        await recorded_dispatch(store, job_id, dispatch_id)


async def test_empty_oversized_and_nul_ids_are_refused_each_named() -> None:
    store = await store_with_two_dispatches()

    with pytest.raises(InvalidFields) as refusal:
        await recorded_dispatch(store, "", "d" * 201)
    with pytest.raises(InvalidFields) as nul:
        await recorded_dispatch(store, f"{JOB}\x00", "d-1")

    assert refusal.value.problems.keys() == {"job_id", "dispatch_id"}
    assert nul.value.problems == {"job_id": "contains a NUL character: remove it"}
