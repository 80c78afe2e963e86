"""Signed heads and the keys behind them, without I/O."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from modelyard_events.signing import ForgedEvent, HeadSigner, HeadVerifier, SignedHead, keyring_from_json
from modelyard_events.store.head_signatures import HeadSignatures
from modelyard_events.testing.signing import OTHER_SIGNER, TEST_KEYS, TEST_SIGNER
from modelyard_events.trust import EventTrustSettings

HASH = "a" * 64


def test_a_head_verifies_under_the_pinned_key_only() -> None:
    head = TEST_SIGNER.sign(7, HASH)

    TEST_KEYS.check(head)
    with pytest.raises(ForgedEvent, match="not pinned"):
        TEST_KEYS.check(OTHER_SIGNER.sign(7, HASH))


@pytest.mark.parametrize(
    "changed",
    [{"position": 8}, {"hash": "b" * 64}, {"signature": "A" * 86}],
    ids=["other-position", "other-hash", "other-signature"],
)
def test_a_head_with_any_field_changed_does_not_verify(changed: dict[str, object]) -> None:
    head = TEST_SIGNER.sign(7, HASH)
    altered = SignedHead(
        int(str(changed.get("position", head.position))),
        str(changed.get("hash", head.hash)),
        head.key_id,
        str(changed.get("signature", head.signature)),
    )
    assert not TEST_KEYS.verifies(altered)


def test_a_head_travels_in_a_header_and_back() -> None:
    head = TEST_SIGNER.sign(3, HASH)

    assert SignedHead.from_header(3, HASH, head.header()) == head


def test_keys_round_trip_through_their_configuration_text() -> None:
    signer = HeadSigner.generate()

    again = HeadSigner.from_text(signer.private_text())
    pinned = HeadVerifier.from_texts([signer.public_text()])

    assert again.key_id == signer.key_id
    pinned.check(again.sign(1, HASH))


def test_several_keys_may_be_pinned_for_a_rotation() -> None:
    keyring = keyring_from_json(json.dumps({"job": [TEST_SIGNER.public_text(), OTHER_SIGNER.public_text()]}))

    keyring["job"].check(TEST_SIGNER.sign(1, HASH))
    keyring["job"].check(OTHER_SIGNER.sign(1, HASH))


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("MODELYARD_EVENT_SIGNING_KEY", "not-a-key", "not base64"),
        ("MODELYARD_EVENT_SIGNING_KEY", "c2hvcnQ", "32 bytes"),
        ("MODELYARD_EVENT_PUBLIC_KEYS", "[1, 2]", "JSON object"),
        ("MODELYARD_EVENT_PUBLIC_KEYS", '{"job": ["c2hvcnQ"]}', "32 bytes"),
    ],
)
def test_bad_key_settings_are_refused_at_start_saying_why(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=says):
        EventTrustSettings()


def test_a_source_with_no_pinned_key_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_EVENT_PUBLIC_KEYS", json.dumps({"job": [TEST_SIGNER.public_text()]}))

    with pytest.raises(Exception, match="pins no key for 'trainer'"):
        EventTrustSettings().keys_for("trainer")
    with pytest.raises(Exception, match="MODELYARD_EVENT_SIGNING_KEY is not set"):
        EventTrustSettings().head_signer()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_under_a_steady_stream_one_signature_rides_every_interval_and_covers_what_came_before() -> None:
    clock = Clock()
    heads = HeadSignatures("s", TEST_SIGNER, carry_every_s=0.005, clock=clock)

    heads.written(1, HASH)
    first = heads.take()
    heads.committed(first)
    heads.written(2, "b" * 64)
    skipped = heads.take()  # 1 ms later: appends 2.. go unsigned for now
    clock.now += 0.001
    heads.committed(skipped)
    heads.written(3, "c" * 64)
    clock.now += 0.005
    later = heads.take()
    heads.committed(later)

    assert (first["s_position"], skipped["s_position"], later["s_position"]) == (1, None, 3)
    assert TEST_KEYS.verifies(SignedHead(3, "c" * 64, later["s_key_id"], later["s_signature"]))
    assert heads.pending is None


def test_without_a_signer_nothing_is_pending() -> None:
    heads = HeadSignatures("s", None)
    heads.written(1, HASH)
    assert (heads.pending, heads.take()["s_position"]) == (None, None)
