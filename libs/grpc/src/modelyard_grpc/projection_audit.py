"""`modelyard.v1.ProjectionAudit`: a service replays its read models for an auditor (see
modelyard_events.projection_replay), streaming what it does and one result per read model.

One replay at a time per process: a rebuild reads every log it follows, and two auditors asking at
once would double that for nothing (the second is told to wait: RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC

from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_events.as_of import AsOfReader
from modelyard_events.domain_errors import InvalidFields, NotFound, QuotaExceeded
from modelyard_events.projection_replay import ReplayReport, ReplayTarget, replay_and_compare
from modelyard_grpc.auth import Role, require_org_access
from modelyard_grpc.authorization import current_principal
from modelyard_grpc.policy import Rule, read

PROJECTION_AUDIT_RULES: Mapping[str, Rule] = {
    "/modelyard.v1.ProjectionAudit/ReplayProjections": read(Role.AUDITOR),
    "/modelyard.v1.ProjectionAudit/StateAsOf": read(Role.AUDITOR, Role.ORG_ADMIN, scoped_in_servicer=True),
}
"""Replay is a read (the fresh schemas are dropped), for auditors (and super_admins); time travel
also for an org_admin, in its own organization (checked once the aggregate is loaded)."""
MAX_ID_CHARS = 200

_QUEUE_LIMIT = 256  # progress lines held for a slow reader; the replay waits beyond that


class ProjectionAuditServicer(events_pb2_grpc.ProjectionAuditServicer):
    """Replays the `targets` (the service's read models) on request."""

    def __init__(
        self,
        engine: AsyncEngine,
        targets: Sequence[ReplayTarget],
        as_of: Mapping[str, AsOfReader] | None = None,
    ) -> None:
        self._engine = engine
        self._targets = {t.name: t for t in targets}
        self._as_of = dict(as_of or {})
        self._running = asyncio.Lock()

    async def StateAsOf(  # noqa: N802 (generated name)
        self,
        request: events_pb2.AsOfRequest,
        context: aio.ServicerContext[events_pb2.AsOfRequest, events_pb2.AsOfState],
    ) -> events_pb2.AsOfState:
        """The aggregate `kind`/`id` as the log said it was at `at`."""
        problems = {}
        if request.kind not in self._as_of:
            served = ", ".join(sorted(self._as_of)) or "none"
            problems["kind"] = f"{request.kind!r} is not kept by this service (kinds here: {served})"
        if not request.id or len(request.id) > MAX_ID_CHARS:
            problems["id"] = f"give the id of the {request.kind or 'entity'} (1..{MAX_ID_CHARS} characters)"
        if not request.HasField("at"):
            problems["at"] = "required: the instant to rebuild the state at"
        if problems:
            raise InvalidFields(problems)
        at = request.at.ToDatetime(tzinfo=UTC)
        found = await self._as_of[request.kind](request.id, at)
        if found is None:
            raise NotFound(f"{request.kind} {request.id} did not exist at {at.isoformat()}")
        require_org_access(current_principal(), found.org_id)
        state = events_pb2.AsOfState(
            kind=request.kind,
            id=request.id,
            org_id=found.org_id or "",
            state_json=json.dumps(found.state, ensure_ascii=False, sort_keys=True),
            events_applied=found.events_applied,
        )
        state.at.CopyFrom(request.at)
        state.last_event_at.FromDatetime(found.last_event_at)
        return state

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
