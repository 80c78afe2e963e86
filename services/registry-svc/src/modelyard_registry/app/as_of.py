"""Time travel in the registry: a model version as its module's log said it was at an instant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from modelyard_events.as_of import AsOfReader, AsOfResult, plain, recorded_by
from modelyard_events.domain_errors import NotFound
from modelyard_events.schemas.registry import module_stream_id
from modelyard_events.store.ports import EventStore
from modelyard_registry.app.commands import module_from_log

Locate = Callable[[str], Awaitable[tuple[str, str]]]


def model_version_as_of(store: EventStore, locate: Locate) -> AsOfReader:
    """`model_version` for StateAsOf: the module's events up to the instant, folded as commands do."""

    async def read(version_id: str, at: datetime) -> AsOfResult | None:
        org_id, ai_module = await locate(version_id)  # NotFound for a version the registry never had
        stored = recorded_by(await store.read_stream(module_stream_id(org_id, ai_module)), at)
        module = module_from_log(org_id, ai_module, stored)
        try:
            version = module.get(version_id)
        except NotFound:
            return None  # registered after `at`
        about = [e for e in stored if e.data.get("version_id") == version_id]
        return AsOfResult(org_id, plain(version), len(about), about[-1].occurred_at)

    return read
