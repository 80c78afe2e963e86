"""Typed errors of the event machinery; `retryable` tells a caller whether trying again can help."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error raised by libs/events."""

    retryable: bool = False


class ConcurrencyConflict(EventStoreError):
    """The stream moved on since the caller read it: reload the aggregate and decide again."""

    retryable = True

    def __init__(self, stream_id: str, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual_version}, not the expected "
            f"{expected_version}: reload it and retry the command"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class StoreBusy(EventStoreError):
    """The append lock was not granted within lock_timeout; the append did not happen."""

    retryable = True


class UnknownEventType(EventStoreError):
    """A stored or received event names a type this process has no schema for."""

    def __init__(self, type_name: str, schema_version: int) -> None:
        super().__init__(f"no event schema registered for {type_name!r} v{schema_version}")
        self.type_name = type_name
        self.schema_version = schema_version


class MalformedEvent(EventStoreError):
    """Bytes or fields that are not a valid event envelope or payload."""


class RegistryError(EventStoreError):
    """An event class or upcaster registered twice or inconsistently."""


class SourceUnavailable(EventStoreError):
    """Another service's log could not be read right now (it is down or restarting); try again later."""

    retryable = True
