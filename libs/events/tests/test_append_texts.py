"""Texts an append cannot store or hash are refused for that append alone, before it is queued."""

from __future__ import annotations

import pytest

from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.errors import MalformedEvent
from modelyard_events.store.pending import prepare_append
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened

_SURROGATE, _NUL = "a\ud800b", "a\x00b"


@pytest.mark.parametrize("bad", [_SURROGATE, _NUL], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize(
    "field", ["stream_type", "stream_id", "org_id", "correlation_id", "causation_id", "subject", "role"]
)
def test_a_text_postgresql_cannot_store_or_hash_is_refused_naming_its_field(field: str, bad: str) -> None:
    # Actor's own validation refuses some of these already; the store must not depend on it.
    actor = Actor.model_construct(
        subject=bad if field == "subject" else "tester", roles=(bad,) if field == "role" else ("operator",)
    )
    context = CommandContext(
        actor=actor,
        org_id=bad if field == "org_id" else "org-1",
        correlation_id=bad if field == "correlation_id" else None,
        causation_id=bad if field == "causation_id" else None,
    )
    stream_type = bad if field == "stream_type" else "counter"
    stream_id = bad if field == "stream_id" else "c-1"
    with pytest.raises(MalformedEvent) as refused:
        prepare_append(stream_type, stream_id, 0, [CounterOpened(name="x")], context)
    named = {"subject": "the actor's subject", "role": "the actor's role"}.get(field, field)
    assert str(refused.value).startswith(named)
    assert ("NUL" if bad == _NUL else "lone surrogate") in str(refused.value)


def test_a_payload_with_a_lone_surrogate_is_refused_and_one_with_a_nul_is_kept_escaped() -> None:
    with pytest.raises(MalformedEvent, match="CounterOpened's payload contains a lone surrogate"):
        prepare_append("counter", "c-1", 0, [CounterOpened(name=_SURROGATE)], TEST_CONTEXT)
    [pending] = prepare_append(
        "counter", "c-1", 0, [CounterOpened(name=_NUL), CounterIncremented(amount=1)], TEST_CONTEXT
    ).events[:1]
    assert "\\u0000" in pending.data_json  # canonical JSON escapes it: the data column can store it
