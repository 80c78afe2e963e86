"""The largest payload an event schema allows, computed from its caps alone (no instance needed).

Walks the fields of a pydantic model: a capped string counts `bytes_per_char` bytes per character
(4 is UTF-8's most per code point; 1 is plain ASCII text), numbers and timestamps their longest
JSON text, lists and maps their cap times their largest item. A string, list or map without a cap
makes the payload unbounded: `UnboundedField` names it. The tests of libs/events hold every
registered event under `PAYLOAD_BOUND_BYTES`, so no event can come near the store's limit.
"""

from __future__ import annotations

import json
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import MaxLen
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from modelyard_events.schemas.bounds import JsonCap, TextCap

PAYLOAD_BOUND_BYTES = 240 * 1024
"""Every event's worst case in UTF-8 (4 bytes per character): below the store's ~256 KiB limit."""
ASCII_PAYLOAD_BOUND_BYTES = 128 * 1024
"""Every event's worst case in ASCII text: half the store's limit."""

_NUMBER_BYTES = 24  # the longest repr of a float (-1.2345678901234567e-308) or a 64-bit int
_TIMESTAMP_BYTES = 34


class UnboundedField(ValueError):
    """A field whose size has no cap; the message names it (`Model.field[item]`)."""


def payload_bound_bytes(model: type[BaseModel], bytes_per_char: int = 4) -> int:
    """An upper bound of the canonical JSON bytes of any valid instance of `model`."""
    return _model_bound(model, bytes_per_char, model.__name__)


def _model_bound(model: type[BaseModel], per_char: int, where: str) -> int:
    total = 2 + max(0, len(model.model_fields) - 1)  # braces and commas
    for name, info in model.model_fields.items():
        path = f"{where}.{name}"
        total += len(json.dumps(name)) + 1 + _bound(info.annotation, info.metadata, per_char, path)
    return total


def _bound(annotation: Any, metadata: list[Any], per_char: int, where: str) -> int:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _bound(args[0], [*metadata, *_flat(args[1:])], per_char, where)
    cap = _cap(metadata)
    if origin is Literal:
        return max(len(json.dumps(arg, ensure_ascii=False).encode()) for arg in args)
    if origin in (Union, types.UnionType):
        return max(_bound(arg, metadata, per_char, where) for arg in args)
    if origin is list or origin is tuple:
        return 2 + _required(cap, where) * (_bound(args[0], [], per_char, f"{where}[item]") + 1)
    if origin is dict:
        if isinstance(cap, JsonCap):
            return cap.max_bytes
        key = _bound(args[0], [], per_char, f"{where}[key]")
        value = _bound(args[1], [], per_char, f"{where}[value]")
        return 2 + _required(cap, where) * (key + value + 2)
    return _scalar_bound(annotation, cap, per_char, where)


def _scalar_bound(annotation: Any, cap: Any, per_char: int, where: str) -> int:
    if annotation is str:
        return 2 + _required(cap, where) * per_char
    if annotation is bool or annotation is type(None):
        return 5
    if annotation is int or annotation is float:
        return _NUMBER_BYTES
    if annotation is datetime or annotation is AwareDatetime:
        return _TIMESTAMP_BYTES
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_bound(annotation, per_char, where)
    raise UnboundedField(f"{where}: cannot bound a field of type {annotation!r}")


def _flat(metadata: tuple[Any, ...]) -> list[Any]:
    # Field(max_length=…) inside Annotated arrives as a FieldInfo holding the MaxLen.
    return [
        item for entry in metadata for item in (entry.metadata if isinstance(entry, FieldInfo) else [entry])
    ]


def _cap(metadata: list[Any]) -> Any:
    for entry in metadata:
        if isinstance(entry, TextCap):
            return entry.max_chars
        if isinstance(entry, MaxLen):
            return entry.max_length
        if isinstance(entry, JsonCap):
            return entry
    return None


def _required(cap: Any, where: str) -> int:
    if not isinstance(cap, int):
        raise UnboundedField(f"{where} has no cap (max_length or a bounded text type)")
    return cap
