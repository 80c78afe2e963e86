"""Small event types used by the library's own tests, demo and benchmarks."""

from __future__ import annotations

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
