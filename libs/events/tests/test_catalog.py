"""The generated event catalog: its rendering, and that docs/event-catalog.md is not stale."""

from __future__ import annotations

from pathlib import Path

from modelyard_events.catalog_doc import discovered_registries, render_catalog
from modelyard_events.registry import EventRegistry
from modelyard_events.testing.sample_events import TemperatureRecorded

CATALOG = Path(__file__).resolve().parents[3] / "docs" / "event-catalog.md"


def test_docs_catalog_matches_the_code() -> None:
    assert CATALOG.read_text() == render_catalog(discovered_registries()), "run `make catalog` and commit"


def test_an_event_is_rendered_with_version_doc_and_fields() -> None:
    text = render_catalog({"sensor-svc": EventRegistry([TemperatureRecorded])})
    assert "## sensor-svc" in text
    assert "### `TemperatureRecorded` (schema v3)" in text
    assert "The current schema: a value with its unit, and where it was measured." in text
    assert "| `unit` | `Literal['C', 'F']` | yes |" in text
    assert "| `value` | `float` | yes |" in text
