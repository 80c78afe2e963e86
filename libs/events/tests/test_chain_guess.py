"""A committer's guess of a batch's hashes: what it assumes, and when a request's hashes are usable."""

from modelyard_events.envelope import GENESIS_HASH
from modelyard_events.hashing import chain_hash
from modelyard_events.store.chain_guess import ChainGuess, Head
from modelyard_events.store.pending import prepare_append
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened

_A = prepare_append("counter", "a", 0, [CounterOpened(name="a"), CounterIncremented(amount=1)], TEST_CONTEXT)
_B = prepare_append("counter", "b", 4, [CounterIncremented(amount=2)], TEST_CONTEXT)


def test_the_guess_chains_every_request_from_the_head_in_order() -> None:
    guess = ChainGuess.of([_A, _B], Head(7, "ab" * 32))
    first = chain_hash("ab" * 32, _A.events[0].halves, 8)
    second = chain_hash(first, _A.events[1].halves, 9)
    third = chain_hash(second, _B.events[0].halves, 10)
    assert guess.starts == (Head(7, "ab" * 32), Head(9, second))
    assert guess.hashes == ((first, second), (third,))
    joined = f"{first}\x1e{second}\x1e{third}"
    assert guess.parameters() == {"g_position": 7, "g_hash": "ab" * 32, "j_hash": joined}


def test_a_request_written_elsewhere_than_guessed_gets_no_hashes() -> None:
    guess = ChainGuess.of([_A, _B], Head(0, GENESIS_HASH))
    assert guess.hashes_for(0, 1, GENESIS_HASH) == guess.hashes[0]
    assert guess.hashes_for(1, 3, guess.hashes[0][1]) == guess.hashes[1]
    assert guess.hashes_for(0, 2, GENESIS_HASH) is None  # another writer took position 1
    assert guess.hashes_for(1, 1, GENESIS_HASH) is None  # the request before it conflicted
    assert guess.hashes_for(0, 1, "0" * 63 + "1") is None  # the same position after another chain
