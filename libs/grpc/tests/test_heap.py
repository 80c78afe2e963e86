"""freeze_startup_heap: what lives at start is frozen; garbage made later is still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from modelyard_grpc.heap import freeze_startup_heap


@pytest.fixture
def frozen() -> Iterator[int]:
    count = freeze_startup_heap()
    yield count
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_the_start_up_heap_is_frozen_and_later_cycles_are_still_collected(frozen: int) -> None:
    assert frozen > 1000  # modules, classes, pytest's own objects
    late = _Node()
    gone = weakref.ref(late)
    del late
    gc.collect()
    assert gone() is None


def test_garbage_left_by_start_up_is_collected_not_frozen() -> None:
    early = _Node()
    gone = weakref.ref(early)
    del early
    freeze_startup_heap()
    try:
        assert gone() is None
    finally:
        gc.unfreeze()
