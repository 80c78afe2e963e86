"""Time travel: an aggregate as its events said it was at a past instant, folded from the log.

Each service names the kinds it can rebuild (a job, a model version, a dataset, the fleet) and
folds the same aggregates its commands use, over the events recorded up to the instant; nothing is
read from a read model, so the answer is the log's. `plain` turns the aggregate (frozen dataclasses
holding pydantic events) into JSON values for the wire.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from modelyard_events.envelope import EventEnvelope


@dataclass(frozen=True)
class AsOfResult:
    """An aggregate at an instant: whose it is, its state, and how much of its log made it."""

    org_id: str | None
    state: Mapping[str, Any]
    events_applied: int
    last_event_at: datetime


AsOfReader = Callable[[str, datetime], Awaitable[AsOfResult | None]]
"""(id, instant) → the aggregate at that instant, or None when it did not exist yet."""


def recorded_by(envelopes: Iterable[EventEnvelope], instant: datetime) -> list[EventEnvelope]:
    """The events recorded at or before `instant` (a stream's events are in the order they happened)."""
    return [e for e in envelopes if e.occurred_at <= instant]


def plain(value: Any) -> Any:
    """JSON values for an aggregate: dataclasses and models as objects, sets sorted, times in ISO 8601."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
