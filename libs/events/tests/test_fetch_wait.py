"""How long consumers' fetches wait on the broker: Kafka's default, or what the environment says."""

from __future__ import annotations

import pytest

from modelyard_events.topics import FETCH_WAIT_ENV, KAFKA_FETCH_WAIT_MS, fetch_max_wait_ms


def test_without_a_setting_fetches_wait_as_long_as_kafka_s_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FETCH_WAIT_ENV, raising=False)
    assert fetch_max_wait_ms() == KAFKA_FETCH_WAIT_MS == 500


def test_the_environment_sets_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FETCH_WAIT_ENV, "50")
    assert fetch_max_wait_ms() == 50


@pytest.mark.parametrize(
    ("raw", "says"), [("fast", "an integer"), ("0", "between 1 and 60000"), ("-5", "between")]
)
def test_a_bad_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str, says: str
) -> None:
    monkeypatch.setenv(FETCH_WAIT_ENV, raw)
    with pytest.raises(ValueError, match=FETCH_WAIT_ENV) as refused:
        fetch_max_wait_ms()
    assert says in str(refused.value)
