"""`modelyard.v1.ProjectionAudit`: a service replays its read models for an auditor (see
modelyard_events.projection_replay), streaming what it does and one result per read model.

One replay at a time per process: a rebuild reads every log it follows, and two auditors asking at
once would double that for nothing (the second is told to wait: RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_events.domain_errors import NotFound, QuotaExceeded
from modelyard_events.projection_replay import ReplayReport, ReplayTarget, replay_and_compare
from modelyard_grpc.auth import Role
from modelyard_grpc.policy import Rule, read

PROJECTION_AUDIT_RULES: Mapping[str, Rule] = {
    "/modelyard.v1.ProjectionAudit/ReplayProjections": read(Role.AUDITOR),
}
"""Replay is a read (the fresh schemas are dropped), for auditors (and super_admins)."""

_QUEUE_LIMIT = 256  # progress lines held for a slow reader; the replay waits beyond that


class ProjectionAuditServicer(events_pb2_grpc.ProjectionAuditServicer):
    """Replays the `targets` (the service's read models) on request."""

    def __init__(self, engine: AsyncEngine, targets: Sequence[ReplayTarget]) -> None:
        self._engine = engine
        self._targets = {t.name: t for t in targets}
        self._running = asyncio.Lock()

    async def ReplayProjections(  # noqa: N802 (generated name)
        self,
        request: events_pb2.ReplayRequest,
        context: aio.ServicerContext[events_pb2.ReplayRequest, events_pb2.ReplayProgress],
    ) -> AsyncIterator[events_pb2.ReplayProgress]:
        """Each asked-for read model replayed and compared, in turn."""
        names = list(request.projections) or sorted(self._targets)
        if unknown := [n for n in names if n not in self._targets]:
            raise NotFound(
                f"no read model named {', '.join(map(repr, unknown))} here; "
                f"this service has: {', '.join(sorted(self._targets))}"
            )
        if self._running.locked():
            raise QuotaExceeded("a replay is already running on this service; try again when it is done")
        async with self._running:
            for name in names:
                async for message in self._replay(self._targets[name]):
                    yield message

    async def _replay(self, target: ReplayTarget) -> AsyncIterator[events_pb2.ReplayProgress]:
        lines: asyncio.Queue[str | None] = asyncio.Queue(_QUEUE_LIMIT)

        async def progress(line: str) -> None:
            await lines.put(line)

        async def run() -> ReplayReport:
            try:
                return await replay_and_compare(self._engine, target, progress)
            finally:
                await lines.put(None)

        task = asyncio.create_task(run())
        try:
            while (line := await lines.get()) is not None:
                yield events_pb2.ReplayProgress(line=line)
            yield events_pb2.ReplayProgress(result=result_to_proto(await task))
        finally:
            if not task.done():  # the caller went away: stop rebuilding (the schema is dropped)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def result_to_proto(report: ReplayReport) -> events_pb2.ProjectionReplayResult:
    """The wire form of one read model's replay."""
    return events_pb2.ProjectionReplayResult(
        projection=report.projection,
        identical=report.identical,
        events_replayed=report.events_replayed,
        positions=dict(report.positions),
        tables=[
            events_pb2.TableComparison(
                table=t.table,
                live_rows=t.live_rows,
                replayed_rows=t.replayed_rows,
                only_live=t.only_live,
                only_replayed=t.only_replayed,
                only_live_examples=list(t.only_live_examples),
                only_replayed_examples=list(t.only_replayed_examples),
            )
            for t in report.tables
        ],
        skipped=dict(report.skipped),
        dead_lettered=report.dead_lettered,
        problem=report.problem,
    )
