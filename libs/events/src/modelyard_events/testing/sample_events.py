"""Small event types used by the library's own tests, demo and benchmarks."""

from __future__ import annotations

from typing import Any, Literal

from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.registry import EventRegistry


class CounterOpened(DomainEvent):
    """A counter stream began."""

    type_name = "CounterOpened"
    name: str


class CounterIncremented(DomainEvent):
    """A counter went up by `amount`; `note` pads payloads to a chosen size."""

    type_name = "CounterIncremented"
    amount: int
    note: str = ""


SAMPLE_REGISTRY = EventRegistry([CounterOpened, CounterIncremented])
TEST_CONTEXT = CommandContext(actor=Actor(subject="tester", roles=("super_admin",)), org_id="org-1")


class TemperatureRecordedV1(DomainEvent):
    """What the first release stored."""

    type_name = "TemperatureRecorded"
    celsius: float


class TemperatureRecorded(DomainEvent):
    """The current schema: a value with its unit, and where it was measured."""

    type_name = "TemperatureRecorded"
    schema_version = 3
    value: float
    unit: Literal["C", "F"]
    site: str


def evolved_registry() -> EventRegistry:
    """A registry at v3 of TemperatureRecorded, upcasting v1 and v2 payloads on read."""
    registry = EventRegistry([TemperatureRecorded])

    @registry.upcaster("TemperatureRecorded", from_version=1)
    def add_unit(data: dict[str, Any]) -> dict[str, Any]:
        return {"value": data["celsius"], "unit": "C"}

    @registry.upcaster("TemperatureRecorded", from_version=2)
    def add_site(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "site": "unknown"}

    return registry
