"""Time travel in deploy-svc: an organization's fleet as the servers' logs said it was at an instant
(each server's facts and the version of each module it served)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from modelyard_deploy.domain.edge_server import EdgeServer
from modelyard_events.as_of import AsOfReader, AsOfResult, plain, recorded_by
from modelyard_events.schemas.deploy import edge_server_stream_id
from modelyard_events.store.ports import EventStore

ServerIds = Callable[[str], Awaitable[list[str]]]
_READ_AT_ONCE = 500  # server streams per read: memory stays bounded however large the fleet


def fleet_as_of(store: EventStore, server_ids: ServerIds) -> AsOfReader:
    """`fleet` for StateAsOf (id: the organization): every server registered by the instant."""

    async def read(org_id: str, at: datetime) -> AsOfResult | None:
        ids = await server_ids(org_id)
        servers: list[dict[str, Any]] = []
        applied, last = 0, None
        for start in range(0, len(ids), _READ_AT_ONCE):
            chunk = [edge_server_stream_id(org_id, s) for s in ids[start : start + _READ_AT_ONCE]]
            streams = await store.read_streams(chunk)
            for stream_id in chunk:
                events = recorded_by(streams.get(stream_id, []), at)
                server = EdgeServer.from_events(events)
                if server is None:
                    continue  # registered after `at`
                servers.append(plain(server))
                applied += len(events)
                last = max(last or events[-1].occurred_at, events[-1].occurred_at)
        if last is None:
            return None
        return AsOfResult(org_id, {"org_id": org_id, "servers": servers}, applied, last)

    return read
