"""Hypothesis strategies for JSON values and recorded envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from modelyard_events.envelope import Actor, EventEnvelope

_hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)

aware_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)

actors = st.builds(
    Actor,
    subject=st.text(min_size=1),
    roles=st.lists(st.sampled_from(["viewer", "ml_engineer", "approver", "org_admin"]), max_size=3).map(
        tuple
    ),
)

envelopes = st.builds(
    EventEnvelope,
    event_id=st.uuids(),
    stream_type=st.text(min_size=1),
    stream_id=st.text(min_size=1),
    stream_version=st.integers(min_value=1, max_value=10**9),
    position=st.integers(min_value=1, max_value=10**12),
    type=st.text(min_size=1),
    schema_version=st.integers(min_value=1, max_value=50),
    occurred_at=aware_datetimes,
    actor=actors,
    org_id=st.none() | st.text(),
    correlation_id=st.text(),
    causation_id=st.none() | st.text(),
    data=json_objects,
    prev_hash=_hex64,
    hash=_hex64,
)
