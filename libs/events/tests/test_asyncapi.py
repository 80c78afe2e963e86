"""The generated AsyncAPI document: one channel per service, a message per event type, every schema
a valid JSON Schema, every reference resolvable, and docs/asyncapi.json not stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from modelyard_events.asyncapi_doc import render_asyncapi, render_asyncapi_json
from modelyard_events.catalog_doc import discovered_registries
from modelyard_events.registry import EventRegistry
from modelyard_events.testing.sample_events import CounterIncremented, CounterOpened

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_docs_asyncapi_matches_the_code() -> None:
    assert DOCUMENT.read_text() == render_asyncapi_json(discovered_registries()), "run `make catalog`"


def test_every_service_has_its_channel_and_every_event_type_its_message() -> None:
    registries = discovered_registries()
    document = render_asyncapi(registries)
    for service, registry in registries.items():
        if not service.endswith("-svc"):
            assert f"{service}Events" not in document["channels"]  # the library's samples stay out
            continue
        key = service.removesuffix("-svc")
        channel = document["channels"][f"{key}Events"]
        assert channel["address"] == f"{{namespace}}.{key}.events"
        assert set(channel["messages"]) == {cls.type_name for cls in registry.catalog()}


def test_each_schema_is_valid_json_schema_and_every_reference_resolves() -> None:
    document = render_asyncapi(discovered_registries())
    for schema in document["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # a KeyError names a dangling reference


def test_a_message_is_the_envelope_with_its_type_version_and_payload() -> None:
    document = render_asyncapi({"counter-svc": EventRegistry([CounterOpened, CounterIncremented])})
    message = document["components"]["messages"]["counter.CounterIncremented"]
    envelope, specific = message["payload"]["allOf"]
    assert envelope == {"$ref": "#/components/schemas/EventEnvelope"}
    assert specific["properties"]["type"] == {"const": "CounterIncremented"}
    data = document["components"]["schemas"]["CounterIncrementedData"]
    assert set(data["required"]) == {"amount"}
    valid = {"amount": 2, "note": "x"}
    Draft7Validator(data).validate(valid)
    with pytest.raises(Exception, match="smuggled"):
        Draft7Validator(data).validate(valid | {"smuggled": 1})  # extra fields are refused, as on read


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_the_document_is_json() -> None:
    assert json.loads(render_asyncapi_json({}))["asyncapi"] == "3.0.0"
