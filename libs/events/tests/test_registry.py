"""The registry: decoding by type name, upcasting old stored payloads, and its refusals."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from modelyard_events.envelope import DomainEvent, stored_payload
from modelyard_events.errors import MalformedEvent, RegistryError, UnknownEventType
from modelyard_events.registry import EventRegistry
from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.sample_events import (
    TEST_CONTEXT,
    TemperatureRecorded,
    TemperatureRecordedV1,
    evolved_registry,
)


async def test_a_v1_event_stored_is_read_back_as_the_current_version() -> None:
    store = InMemoryEventStore()
    await store.append("sensor", "s-1", 0, [TemperatureRecordedV1(celsius=21.5)], TEST_CONTEXT)

    [stored] = await store.read_stream("s-1")
    assert stored.schema_version == 1
    assert stored.data == {"celsius": 21.5}  # the log is never rewritten
    assert evolved_registry().decode(stored) == TemperatureRecorded(value=21.5, unit="C", site="unknown")


def test_current_payloads_are_decoded_without_upcasting() -> None:
    data = {"value": 1, "unit": "F", "site": "a"}
    event = evolved_registry().decode_payload("TemperatureRecorded", 3, data)
    assert event == TemperatureRecorded(value=1, unit="F", site="a")


def test_a_missing_upcaster_is_named() -> None:
    registry = EventRegistry([TemperatureRecorded])
    with pytest.raises(RegistryError, match="no upcaster from 'TemperatureRecorded' v1 to v2"):
        registry.decode_payload("TemperatureRecorded", 1, {"celsius": 1.0})


@pytest.mark.parametrize(
    ("name", "version"), [("Nope", 1), ("TemperatureRecorded", 4), ("TemperatureRecorded", 0)]
)
def test_unknown_types_and_versions_are_refused(name: str, version: int) -> None:
    with pytest.raises(UnknownEventType, match=f"{name}' v{version}"):
        evolved_registry().decode_payload(name, version, {})


def test_a_payload_that_does_not_fit_the_schema_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="TemperatureRecorded v3"):
        evolved_registry().decode_payload("TemperatureRecorded", 3, {"value": 1, "unit": "K", "site": "a"})


def test_a_type_name_is_registered_once() -> None:
    registry = EventRegistry([TemperatureRecorded])
    registry.register(TemperatureRecorded)  # the same class again is harmless
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(TemperatureRecordedV1)


def test_an_upcaster_is_registered_once() -> None:
    registry = evolved_registry()
    with pytest.raises(RegistryError, match="upcaster for 'TemperatureRecorded' v1 exists"):
        registry.upcaster("TemperatureRecorded", 1)(lambda data: data)


def test_a_stored_payload_is_validated_from_its_text_as_its_dict_would_be() -> None:
    registry = evolved_registry()
    text = '{"site":"a","unit":"F","value":1}'
    from_text = registry.decode_payload("TemperatureRecorded", 3, stored_payload(text))
    assert from_text == registry.decode_payload("TemperatureRecorded", 3, json.loads(text))
    with pytest.raises(MalformedEvent, match="TemperatureRecorded v3"):
        registry.decode_payload("TemperatureRecorded", 3, stored_payload('{"site":"a","unit":"K","value":1}'))


def test_a_stored_payload_of_an_old_version_goes_through_its_upcasters() -> None:
    event = evolved_registry().decode_payload("TemperatureRecorded", 1, stored_payload('{"celsius":21.5}'))
    assert event == TemperatureRecorded(value=21.5, unit="C", site="unknown")


def test_an_upcaster_that_changes_its_input_in_place_leaves_the_stored_payload_alone() -> None:
    """The payload may be shared: by a stored envelope, or by the runners that took one decoded message."""
    registry = EventRegistry([TemperatureRecorded])

    @registry.upcaster("TemperatureRecorded", 1)
    def careless(data: dict[str, object]) -> dict[str, object]:
        data["value"] = data.pop("celsius")  # in place
        data["unit"] = "C"
        return data

    @registry.upcaster("TemperatureRecorded", 2)
    def careless_too(data: dict[str, object]) -> dict[str, object]:
        data["site"] = "unknown"
        return data

    shared = stored_payload('{"celsius":21.5}')
    for _ in range(2):  # a second runner decodes the same payload
        assert registry.decode_payload("TemperatureRecorded", 1, shared) == TemperatureRecorded(
            value=21.5, unit="C", site="unknown"
        )
    assert shared == {"celsius": 21.5}
    assert shared.json == '{"celsius":21.5}'


def test_a_stored_payload_is_validated_once_for_every_registry_of_its_class() -> None:
    """The runners of a process that take one decoded message share its event (shared_decodes.py)."""
    payload = stored_payload('{"site":"a","unit":"F","value":1}')
    first = evolved_registry().decode_payload("TemperatureRecorded", 3, payload)
    assert evolved_registry().decode_payload("TemperatureRecorded", 3, payload) is first

    class Lookalike(DomainEvent):  # another class of the same name and version: validated as itself
        type_name: ClassVar[str] = "TemperatureRecorded"
        schema_version: ClassVar[int] = 3
        value: float
        unit: str
        site: str

    other = EventRegistry([Lookalike]).decode_payload("TemperatureRecorded", 3, payload)
    assert type(other) is Lookalike
    assert other.value == 1.0
    assert evolved_registry().decode_payload("TemperatureRecorded", 3, payload) is not other


def test_a_stored_payload_that_does_not_validate_fails_every_time() -> None:
    payload = stored_payload('{"site":"a","unit":"K","value":1}')
    for _ in range(2):
        with pytest.raises(MalformedEvent, match="TemperatureRecorded v3"):
            evolved_registry().decode_payload("TemperatureRecorded", 3, payload)
    assert payload.event is None
