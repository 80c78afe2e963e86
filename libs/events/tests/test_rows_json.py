"""rows_json: rows for one statement as a JSON document, read back as the same values."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from modelyard_events.db import rows_json

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(st.dictionaries(st.text(), _values, max_size=6), max_size=5))
def test_rows_read_back_as_the_values_sent(rows: list[dict[str, object]]) -> None:
    assert json.loads(rows_json(rows)) == rows


def test_awkward_texts_and_numbers_survive() -> None:
    row = {"note": 'quote " backslash \\ newline \n nul-free ü 🙂', "big": 2**70, "tiny": 5e-324, "lr": 0.001}
    assert json.loads(rows_json([row])) == [row]
