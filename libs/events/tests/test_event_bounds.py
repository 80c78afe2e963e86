"""Every event is bounded (issue 11, item 2): no single event can come near the store's size limit."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from modelyard_events.canonical import canonical_json
from modelyard_events.catalog_doc import discovered_registries
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import DomainEvent, payload_of
from modelyard_events.schemas.bounds import REASON_MAX_CHARS, Reason, checked_identifier, truncate_text
from modelyard_events.schemas.hyperparameters import HyperparameterError, validate_hyperparameters
from modelyard_events.schemas.jobs import JobCreated, JobFailed
from modelyard_events.schemas.size_bound import (
    ASCII_PAYLOAD_BOUND_BYTES,
    PAYLOAD_BOUND_BYTES,
    UnboundedField,
    payload_bound_bytes,
)
from modelyard_events.schemas.training import TrainingFailed

SERVICE_EVENTS = [
    event_class
    for service, registry in discovered_registries().items()
    if not service.startswith("libs/")  # the library's own sample events, for its tests
    for event_class in registry.catalog()
]


@pytest.mark.parametrize("event_class", SERVICE_EVENTS, ids=lambda cls: cls.type_name)
def test_every_event_schema_is_bounded_far_below_the_store_limit(event_class: type[DomainEvent]) -> None:
    assert payload_bound_bytes(event_class, bytes_per_char=4) <= PAYLOAD_BOUND_BYTES
    assert payload_bound_bytes(event_class, bytes_per_char=1) <= ASCII_PAYLOAD_BOUND_BYTES


def test_a_field_without_a_cap_is_named() -> None:
    class Loose(BaseModel):
        tags: list[Annotated[str, Field(max_length=8)]] = Field(max_length=4)
        note: str

    with pytest.raises(UnboundedField, match=r"Loose\.note"):
        payload_bound_bytes(Loose)


def test_the_bound_is_never_below_a_real_payload() -> None:
    class Labels(BaseModel):
        names: list[Annotated[str, Field(max_length=3)]] = Field(max_length=2)
        reason: Reason

    widest = Labels(names=["€€€", "€€€"], reason="x" * REASON_MAX_CHARS)
    assert len(canonical_json(widest.model_dump(mode="json")).encode()) <= payload_bound_bytes(Labels)


def test_a_long_reason_is_cut_with_a_visible_marker_by_the_schema() -> None:
    failed = JobFailed(job_id="job-1", attempt=1, reason="columns are " + "c," * 800_000)
    assert len(failed.reason) == REASON_MAX_CHARS
    assert failed.reason.startswith("columns are c,c,")
    assert failed.reason.endswith("… (truncated)")
    assert len(canonical_json(payload_of(failed)).encode()) < 16 * 1024


def test_a_reason_stored_before_the_caps_still_decodes_bounded() -> None:
    from modelyard_events.schemas.training import TRAINER_EVENTS

    stored = {"job_id": "j", "attempt": 1, "dispatch_id": "d", "trainer_id": "t", "reason": "e" * 10**6}
    decoded = TRAINER_EVENTS.decode_payload("TrainingFailed", 1, stored)
    assert isinstance(decoded, TrainingFailed)
    assert len(decoded.reason) == REASON_MAX_CHARS


def test_hyperparameters_beyond_their_json_cap_are_refused() -> None:
    with pytest.raises(ValueError, match="bytes of JSON"):
        JobCreated(
            job_id="job-1",
            org_id="org",
            name="n",
            ai_module="m",
            family="tabular_classifier",
            dataset_uri="dataset://ds-1/1",
            hyperparameters={"feature_columns": ["c" * 100] * 1000},
            priority=1,
            created_by="someone",
        )


@given(text=st.text(), limit=st.integers(min_value=1, max_value=300), where=st.text(max_size=400))
def test_truncated_text_never_exceeds_its_cap_and_keeps_text_that_fits(
    text: str, limit: int, where: str
) -> None:
    cut = truncate_text(text, limit, full_text_at=where or None)
    assert len(cut) <= limit
    if len(text) <= limit:
        assert cut == text
    elif limit >= len("… (truncated)"):
        assert "(truncated" in cut
        assert cut.endswith(")")


def test_the_marker_names_where_the_full_text_is_kept() -> None:
    cut = truncate_text("x" * 5000, 2000, full_text_at="/runs/job-1/failure.txt")
    assert cut.endswith("… (truncated; full text in /runs/job-1/failure.txt)")
    assert cut.startswith("x" * 1900)
    assert len(cut) == 2000


def test_an_overlong_caller_id_is_refused_as_an_argument_before_any_event_holds_it() -> None:
    assert checked_identifier("", "request_id") is None
    assert checked_identifier("r-1", "request_id") == "r-1"
    with pytest.raises(InvalidArgument) as refused:
        checked_identifier("r" * 201, "request_id")
    assert refused.value.problems == {"request_id": "must be at most 200 characters; got 201"}


def test_hyperparameters_too_big_for_a_jobs_events_are_refused_naming_the_cap() -> None:
    values = {"target_column": "y", "feature_columns": [f"{i:03d}" + "c" * 150 for i in range(500)]}

    with pytest.raises(HyperparameterError) as refused:
        validate_hyperparameters("tabular_classifier", values)

    assert list(refused.value.problems) == ["(all)"]
    assert re.fullmatch(
        r"take \d\d,\d{3} bytes as JSON, more than the 16,384 a job holds", refused.value.problems["(all)"]
    )
