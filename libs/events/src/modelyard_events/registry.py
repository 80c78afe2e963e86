"""Event types by stable name, and the upcasters that lift old stored payloads to the current schema.

This is the single decode path: live consumers, rebuilds, replays and audits
all turn an EventEnvelope into a DomainEvent here, so an upcaster can never be
skipped by one of them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import ValidationError

from modelyard_events.envelope import DomainEvent, EventEnvelope, StoredPayload
from modelyard_events.errors import MalformedEvent, RegistryError, UnknownEventType

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
E = TypeVar("E", bound=type[DomainEvent])


class EventRegistry:
    """Maps type names to their current event class and upcasts older payloads."""

    def __init__(self, event_classes: Iterable[type[DomainEvent]] = ()) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for cls in event_classes:
            self.register(cls)

    @classmethod
    def combined(cls, *registries: EventRegistry) -> EventRegistry:
        """One registry knowing every class and upcaster of `registries` (for consumers of several logs).

        Raises RegistryError when two of them use one type name for different classes.
        """
        merged = cls()
        for registry in registries:
            for event_class in registry._classes.values():
                merged.register(event_class)
            for (type_name, version), step in registry._upcasters.items():
                merged.upcaster(type_name, version)(step)
        return merged

    def register(self, cls: E) -> E:
        """Register an event class (usable as a decorator); names must be unique."""
        name = cls.type_name
        if name in self._classes and self._classes[name] is not cls:
            raise RegistryError(f"event type {name!r} is already registered")
        self._classes[name] = cls
        return cls

    def upcaster(self, type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning a `from_version` payload into `from_version + 1`."""

        def add(function: Upcaster) -> Upcaster:
            key = (type_name, from_version)
            if key in self._upcasters:
                raise RegistryError(f"an upcaster for {type_name!r} v{from_version} exists")
            self._upcasters[key] = function
            return function

        return add

    def class_of(self, type_name: str) -> type[DomainEvent]:
        """The current class for a type name."""
        try:
            return self._classes[type_name]
        except KeyError:
            raise UnknownEventType(type_name, 0) from None

    def knows(self, type_name: str) -> bool:
        """Whether a type name has a registered class."""
        return type_name in self._classes

    def decode(self, envelope: EventEnvelope) -> DomainEvent:
        """The payload of `envelope` as the current version of its event class."""
        return self.decode_payload(envelope.type, envelope.schema_version, envelope.data)

    def decode_payload(self, type_name: str, schema_version: int, data: Payload) -> DomainEvent:
        """Upcast `data` from `schema_version` to the current one and validate it."""
        cls = self._classes.get(type_name)
        if cls is None or schema_version > cls.schema_version or schema_version < 1:
            raise UnknownEventType(type_name, schema_version)
        if schema_version == cls.schema_version and type(data) is StoredPayload:
            known = data.event  # validated once per class (StoredPayload)
            if known is None or type(known) is not cls:
                known = data.event = self._validate(cls, type_name, schema_version, data.json)
            return known
        if schema_version < cls.schema_version:
            # An upcaster gets a copy: the payload it was given may be shared (a stored envelope, or
            # one decoded message that several runners of a process take: consumer/shared_decodes.py).
            data = copy.deepcopy(dict(data))
        for version in range(schema_version, cls.schema_version):
            step = self._upcasters.get((type_name, version))
            if step is None:
                raise RegistryError(f"no upcaster from {type_name!r} v{version} to v{version + 1}")
            data = step(data)
        return self._validate(cls, type_name, schema_version, data)

    @staticmethod
    def _validate(
        cls: type[DomainEvent], type_name: str, schema_version: int, data: Payload | str
    ) -> DomainEvent:
        try:
            # The validator itself: model_validate adds a third to each call, and a replay makes millions.
            validator = cls.__pydantic_validator__
            event: DomainEvent = (
                validator.validate_json(data) if isinstance(data, str) else validator.validate_python(data)
            )
            return event
        except ValidationError as error:
            raise MalformedEvent(f"{type_name} v{schema_version}: {error}") from error

    def catalog(self) -> list[type[DomainEvent]]:
        """Every registered class, sorted by type name (feeds the generated event catalog)."""
        return [self._classes[name] for name in sorted(self._classes)]
