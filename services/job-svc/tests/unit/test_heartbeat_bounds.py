"""What a trainer's heartbeat may claim: slots, GPUs and running dispatches are bounded."""

from __future__ import annotations

import pytest

from modelyard_events.schemas.jobs import MAX_GPUS
from modelyard_job.domain.heartbeats import MAX_TRAINER_SLOTS, heartbeat_problems


class TestHeartbeatBounds:
    @pytest.mark.parametrize("slots", [0, -1, MAX_TRAINER_SLOTS + 1, 2**31 - 1])
    def test_absurd_slot_counts_are_refused_naming_the_bounds(self, slots: int) -> None:
        assert heartbeat_problems("t-1", slots, [], []) == {
            "slots_total": f"a trainer has 1 to {MAX_TRAINER_SLOTS} slots; got {slots}"
        }

    @pytest.mark.parametrize("slots", [1, MAX_TRAINER_SLOTS])
    def test_slot_counts_within_the_bounds_are_accepted(self, slots: int) -> None:
        assert heartbeat_problems("t-1", slots, ["NVIDIA H100"], ["d-1"]) == {}

    def test_more_running_dispatches_than_slots_are_refused(self) -> None:
        problems = heartbeat_problems("t-1", 2, [], ["d-1", "d-2", "d-3"])

        assert problems["running_dispatch_ids"].endswith("runs at most that many dispatches; got 3")

    def test_too_many_or_too_long_gpu_names_are_refused(self) -> None:
        assert "gpus" in heartbeat_problems("t-1", 1, ["gpu"] * (MAX_GPUS + 1), [])
        assert "gpus" in heartbeat_problems("t-1", 1, ["x" * 201], [])

    def test_a_trainer_id_longer_than_an_event_holds_is_refused(self) -> None:
        assert "trainer_id" in heartbeat_problems("t" * 201, 1, [], [])
