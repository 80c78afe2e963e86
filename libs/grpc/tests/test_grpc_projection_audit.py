"""ProjectionAuditServicer's refusals, without a database: an unknown read model, a second replay."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.v1 import events_pb2
from modelyard_events.domain_errors import NotFound, QuotaExceeded
from modelyard_events.projection_replay import ReplayTarget
from modelyard_events.testing.sample_events import SAMPLE_REGISTRY
from modelyard_events.testing.sample_projection import CounterTotals
from modelyard_grpc.projection_audit import ProjectionAuditServicer

TARGET = ReplayTarget("counter_totals", "live", CounterTotals, SAMPLE_REGISTRY, [])


def _servicer() -> ProjectionAuditServicer:
    return ProjectionAuditServicer(engine=None, targets=[TARGET])  # type: ignore[arg-type]  # never reached


async def _first(servicer: ProjectionAuditServicer, *names: str) -> Any:
    stream = servicer.ReplayProjections(events_pb2.ReplayRequest(projections=list(names)), None)  # type: ignore[arg-type]
    return await anext(stream)


async def test_an_unknown_read_model_is_named_with_the_ones_there_are() -> None:
    with pytest.raises(NotFound, match="no read model named 'nope' here; this service has: counter_totals"):
        await _first(_servicer(), "nope")


async def test_a_second_replay_while_one_runs_is_told_to_wait() -> None:
    servicer = _servicer()
    async with servicer._running:  # a replay in progress
        with pytest.raises(QuotaExceeded, match="a replay is already running"):
            await _first(servicer)
