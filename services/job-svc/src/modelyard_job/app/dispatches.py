"""Whose a dispatch is, as the job's stream in job-svc's store records it.

trainer-svc asks before it stores a dispatch's first report, so that only the trainer a dispatch
went to can open the dispatch's report stream (its first writer is its only writer). It reads the
store, not a view: the trainer learns of a dispatch from the same Kafka message as the views, and
its first report may come before they have applied it.
"""

from __future__ import annotations

from modelyard_events.domain_errors import InvalidFields, NotFound
from modelyard_events.schemas.bounds import identifier_problems
from modelyard_events.schemas.jobs import JOB_EVENTS, JOB_STREAM, DispatchRecord, JobDispatched
from modelyard_events.store.ports import EventStore


async def recorded_dispatch(store: EventStore, job_id: str, dispatch_id: str) -> DispatchRecord:
    """The job's dispatch `dispatch_id`; InvalidFields for an empty or oversized id or one with a
    NUL, NotFound when the job has no such dispatch (or there is no such job)."""
    given = {"job_id": job_id, "dispatch_id": dispatch_id}
    problems = identifier_problems(**given)
    problems |= {field: "is required" for field, value in given.items() if not value}
    problems |= {
        field: "contains a NUL character: remove it" for field, value in given.items() if "\x00" in value
    }
    if problems:
        raise InvalidFields(problems)
    for envelope in await store.read_stream(job_id):
        if envelope.stream_type != JOB_STREAM or envelope.type != JobDispatched.type_name:
            continue
        event = JOB_EVENTS.decode(envelope)
        if isinstance(event, JobDispatched) and event.dispatch_id == dispatch_id:
            return DispatchRecord(
                job_id,
                dispatch_id,
                event.attempt,
                event.trainer_id,
                envelope.org_id,
                str(envelope.event_id),
                envelope.correlation_id,
            )
    raise NotFound(f"job {job_id} has no dispatch {dispatch_id}")
