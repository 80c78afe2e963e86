"""A worker's reports reach the trainer log through trainer-svc's AppendReports over gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc import aio
from test_report_service import DISPATCH_TO_A, TRAINER_A, TRAINER_B, cancelled, started

from modelyard.v1 import trainer_pb2_grpc
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.training import RUN_STREAM, TrainingFailed, TrainingReport
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_grpc import Principal, acting_as, channel, field_violations, serving
from modelyard_grpc.method_handlers import Context, Handler, wrap_handler
from modelyard_trainer.dispatches import KnownDispatches
from modelyard_trainer.grpc_api import SERVICE_NAMES
from modelyard_trainer.report_service import ReportServicer
from modelyard_trainer.report_wire import MAX_REPORTS_PER_APPEND, report_batches
from modelyard_trainer.worker.report_client import GrpcReportLog, ReportsNotDelivered
from modelyard_trainer.worker.report_writer import append_reports, write_reports

CONTEXT = CommandContext(
    actor=Actor(subject="trainer-a", roles=("trainer",)),
    org_id="org-1",
    correlation_id=DISPATCH_TO_A.correlation_id,
    causation_id=DISPATCH_TO_A.event_id,
)
DISPATCHES = KnownDispatches(DISPATCH_TO_A)


class ActingAs(aio.ServerInterceptor):
    """Stands in for the AuthInterceptor: every call runs as `principal` (tokens are tested elsewhere)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Handler | None:
        handler = await continuation(details)

        @asynccontextmanager
        async def as_principal(request: Any, context: Context) -> AsyncIterator[None]:
            with acting_as(self.principal):
                yield

        return None if handler is None else wrap_handler(handler, as_principal)


@asynccontextmanager
async def trainer_svc(
    store: InMemoryEventStore, caller: Principal = TRAINER_A
) -> AsyncIterator[GrpcReportLog]:
    """trainer-svc's report servicer over `store`, and a worker's client of it."""
    async with (
        serving(
            [(trainer_pb2_grpc.add_TrainerReportsServicer_to_server, ReportServicer(store, DISPATCHES))],
            service_names=SERVICE_NAMES,
            interceptors=[ActingAs(caller)],
            grace_s=0,
        ) as server,
        channel(f"127.0.0.1:{server.port}") as ch,
    ):
        yield GrpcReportLog(ch, timeout_s=10)


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore(signer=TEST_SIGNER)


async def test_appended_reports_land_in_the_trainer_log_as_the_caller(store: InMemoryEventStore) -> None:
    async with trainer_svc(store) as reports:
        version = await reports.append(RUN_STREAM, "dsp-1", 0, [started(), cancelled()], CONTEXT)

    stream = await store.read_stream("dsp-1")
    assert version == 2
    assert [(e.type, e.actor.subject, e.org_id) for e in stream] == [
        ("TrainingStarted", "trainer-a", "org-1"),
        ("TrainingCancelled", "trainer-a", "org-1"),
    ]


async def test_a_conflict_comes_back_as_the_stores_conflict_with_the_actual_version(
    store: InMemoryEventStore,
) -> None:
    async with trainer_svc(store) as reports:
        await reports.append(RUN_STREAM, "dsp-1", 0, [started()], CONTEXT)
        with pytest.raises(ConcurrencyConflict) as conflict:
            await reports.append(RUN_STREAM, "dsp-1", 0, [cancelled()], CONTEXT)

    assert conflict.value.actual_version == 1


async def test_an_append_whose_answer_was_lost_is_not_written_twice(store: InMemoryEventStore) -> None:
    async with trainer_svc(store) as reports:
        await reports.append(RUN_STREAM, "dsp-1", 0, [started(), cancelled()], CONTEXT)  # answer "lost"

        version = await append_reports(reports, "dsp-1", 0, [started(), cancelled()], CONTEXT)

    assert version == 2
    assert len(await store.read_stream("dsp-1")) == 2


async def test_a_refusal_reaches_the_worker_with_its_status_and_field(store: InMemoryEventStore) -> None:
    async with trainer_svc(store, caller=TRAINER_B) as reports:
        with pytest.raises(aio.AioRpcError) as forged:
            await reports.append(RUN_STREAM, "dsp-1", 0, [started()], CONTEXT)
        with pytest.raises(aio.AioRpcError) as misaddressed:
            await reports.append(RUN_STREAM, "dsp-2", 0, [cancelled(trainer_id="trainer-b")], CONTEXT)

    assert forged.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert misaddressed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(misaddressed.value)[0][0] == "reports[0].data_json.dispatch_id"
    assert await store.read_all() == []


async def test_an_unreachable_trainer_svc_is_a_retryable_store_error() -> None:
    async with aio.insecure_channel("127.0.0.1:9") as ch:
        with pytest.raises(ReportsNotDelivered):
            await GrpcReportLog(ch, timeout_s=2).append(RUN_STREAM, "dsp-1", 0, [started()], CONTEXT)


async def test_a_backlog_larger_than_one_append_is_written_in_bounded_appends(
    store: InMemoryEventStore,
) -> None:
    backlog: list[TrainingReport] = [started()] + [
        TrainingFailed(**cancelled().model_dump(), reason=f"{i}") for i in range(2 * MAX_REPORTS_PER_APPEND)
    ]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for report in backlog:
        queue.put_nowait([report])
    queue.put_nowait(None)

    async with trainer_svc(store) as reports:
        last = await write_reports(reports, "dsp-1", CONTEXT, queue)

    assert last == backlog[-1]
    assert [e.data for e in await store.read_stream("dsp-1")] == [r.model_dump(mode="json") for r in backlog]


def test_report_batches_keep_order_within_both_bounds() -> None:
    reports = [cancelled()] * (2 * MAX_REPORTS_PER_APPEND + 1)

    batches = list(report_batches(reports))

    assert [len(b) for b in batches] == [MAX_REPORTS_PER_APPEND, MAX_REPORTS_PER_APPEND, 1]
    assert list(report_batches([])) == []
