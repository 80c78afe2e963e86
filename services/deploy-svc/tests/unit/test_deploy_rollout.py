"""The Rollout aggregate: waves in order, halting over the threshold, rolling back, cancel and rollback."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from deploy_builders import MODULE, NOW, ORG, SHA
from hypothesis import given
from hypothesis import strategies as st

from modelyard_deploy.domain import rollout_decisions as rollouts
from modelyard_deploy.domain.deployment import Outcome
from modelyard_deploy.domain.rollout import Rollout, RolloutSpec, wave_members
from modelyard_deploy.domain.rollout_decisions import next_step
from modelyard_events.domain_errors import IllegalTransition, InvalidFields
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.deploy import (
    TARGETS_PER_EVENT,
    HealthLimits,
    RolloutFinished,
    RolloutHalted,
    RolloutStarted,
    RolloutTargetsAdded,
    RolloutWaveFinished,
    RolloutWaveStarted,
)


def spec(
    servers: Sequence[str] = ("s1", "s2", "s3", "s4", "s5"),
    wave_sizes: Sequence[int] | None = (1, 2),
    threshold: float = 0.0,
    rollback: bool = True,
    **changes: object,
) -> RolloutSpec:
    fields: dict[str, object] = {
        "rollout_id": "r-1",
        "org_id": ORG,
        "version_id": "v2",
        "ai_module": MODULE,
        "semantic_version": "2.0.0",
        "artifact_sha256": SHA,
        "artifact_size_bytes": 1000,
        "server_ids": list(servers),
        "scheduled_at": NOW,
        "deadline_s": 600,
        "max_retries": 2,
        "backoff_base_s": 5.0,
        "health": HealthLimits(),
        "started_by": "olga",
        "failure_threshold": threshold,
        "rollback_on_failure": rollback,
        "wave_sizes": wave_sizes,
    }
    fields.update(changes)
    return RolloutSpec(**fields)  # type: ignore[arg-type]


def fold(events: list[DomainEvent], rollout: Rollout | None = None) -> Rollout:
    for event in events:
        if rollout is None:
            assert isinstance(event, RolloutStarted)
            rollout = Rollout.started(event, NOW)
        else:
            rollout = rollout.apply(event, NOW)
    assert rollout is not None
    return rollout


def running(**kwargs: object) -> Rollout:
    r = fold(rollouts.start_rollout(spec(**kwargs)))  # type: ignore[arg-type]
    return fold(next_step(r, {}, NOW), r)


def step(
    r: Rollout, outcomes: dict[str, Outcome], undo: dict[str, Outcome] | None = None
) -> list[DomainEvent]:
    return next_step(r, outcomes, NOW + timedelta(minutes=1), undo)


class TestStartingARollout:
    def test_targets_follow_in_wave_order_in_bounded_chunks(self) -> None:
        servers = [f"s{i}" for i in range(TARGETS_PER_EVENT + 5)]
        events = rollouts.start_rollout(spec(servers, wave_sizes=None))
        started, *chunks = events
        assert isinstance(started, RolloutStarted)
        assert started.wave_sizes == [1, len(servers) - 1]
        assert [len(c.server_ids) for c in chunks if isinstance(c, RolloutTargetsAdded)] == [
            TARGETS_PER_EVENT,
            5,
        ]
        r = fold(events)
        assert r.targets == tuple(servers)
        assert r.state == "scheduled"
        assert r.current_wave == -1

    def test_wave_members_are_consecutive_slices_of_the_targets(self) -> None:
        r = fold(rollouts.start_rollout(spec()))
        assert [wave_members(r, w) for w in range(3)] == [("s1",), ("s2", "s3"), ("s4", "s5")]
        assert r.wave_of("s5") == 2
        assert r.wave_of("nobody") is None

    def test_a_server_listed_twice_and_a_bad_threshold_are_refused_together(self) -> None:
        with pytest.raises(InvalidFields) as refused:
            rollouts.start_rollout(spec(["s1", "s1"], threshold=1.5))
        assert set(refused.value.problems) == {"server_ids", "failure_threshold"}

    def test_a_scheduled_rollout_waits_for_its_time(self) -> None:
        r = fold(rollouts.start_rollout(spec(scheduled_at=NOW + timedelta(hours=1))))
        assert next_step(r, {}, NOW) == []
        [started] = next_step(r, {}, NOW + timedelta(hours=1))
        assert isinstance(started, RolloutWaveStarted)
        assert (started.wave, started.count) == (0, 1)


class TestWaves:
    def test_a_wave_with_open_deployments_decides_nothing(self) -> None:
        assert step(running(), {"s1": "open"}) == []
        assert step(running(), {}) == []

    def test_a_passed_wave_starts_the_next(self) -> None:
        finished, started = step(running(), {"s1": "completed"})
        assert isinstance(finished, RolloutWaveFinished)
        assert finished.passed
        assert isinstance(started, RolloutWaveStarted)
        assert (started.wave, started.first_index, started.count) == (
            1,
            1,
            2,
        )

    def test_the_last_passed_wave_completes_the_rollout(self) -> None:
        r = running(wave_sizes=[5])
        finished, done = step(r, dict.fromkeys(["s1", "s2", "s3", "s4", "s5"], "completed"))
        assert isinstance(done, RolloutFinished)
        assert (done.outcome, done.completed_servers) == (
            "completed",
            5,
        )
        assert fold([finished, done], r).state == "completed"

    def test_cancelled_deployments_count_as_neither_failed_nor_completed(self) -> None:
        r = running(wave_sizes=[5], threshold=0.2)
        outcomes: dict[str, Outcome] = {
            "s1": "failed",
            "s2": "cancelled",
            "s3": "cancelled",
            "s4": "completed",
        }
        outcomes["s5"] = "completed"
        finished, done = step(r, outcomes)
        assert isinstance(finished, RolloutWaveFinished)
        assert (finished.failed, finished.cancelled, finished.failure_ratio, finished.passed) == (
            1,
            2,
            0.2,
            True,
        )
        assert isinstance(done, RolloutFinished)
        assert done.completed_servers == 2


class TestHalting:
    def test_a_wave_halts_as_soon_as_its_failures_pass_the_threshold(self) -> None:
        r = running(wave_sizes=[4, 1], threshold=0.25)
        events = step(r, {"s1": "failed", "s2": "failed", "s3": "completed"})  # s4 still open
        finished, halted = events
        assert isinstance(finished, RolloutWaveFinished)
        assert not finished.passed
        assert isinstance(halted, RolloutHalted)
        assert halted.rolling_back
        assert halted.failed_servers == ["s1", "s2"]
        assert "2 of 4 deployments failed (50%), above the threshold of 25%" in halted.reason
        assert fold(events, r).state == "rolling_back"

    def test_a_failure_ratio_equal_to_the_threshold_does_not_halt(self) -> None:
        r = running(wave_sizes=[4, 1], threshold=0.25)
        assert step(r, {"s1": "failed"}) == []

    def test_without_rollback_a_halt_finishes_the_rollout_as_halted(self) -> None:
        r = running(rollback=False)
        events = step(r, {"s1": "failed"})
        assert [type(e) for e in events] == [RolloutWaveFinished, RolloutHalted, RolloutFinished]
        assert fold(events, r).state == "halted"

    def test_with_nothing_completed_there_is_nothing_to_roll_back(self) -> None:
        events = step(running(), {"s1": "failed"})
        halted, finished = events[1], events[2]
        assert isinstance(halted, RolloutHalted)
        assert not halted.rolling_back
        assert isinstance(finished, RolloutFinished)
        assert "nothing to roll back" in finished.reason


class TestRollingBack:
    def rolling_back(self) -> Rollout:
        r = fold(step(running(), {"s1": "completed"}), running())  # wave 1 running
        return fold(step(r, {"s1": "completed", "s2": "failed"}), r)

    def test_rolling_back_waits_for_every_rollback_deployment(self) -> None:
        r = self.rolling_back()
        assert r.state == "rolling_back"
        assert step(r, {"s1": "completed", "s2": "failed"}, {"s1": "open"}) == []

    def test_rolled_back_when_every_rollback_deployment_ended_and_says_who_kept_the_version(self) -> None:
        r = self.rolling_back()
        outcomes: dict[str, Outcome] = {"s1": "completed", "s2": "failed", "s3": "completed"}
        [finished] = step(r, outcomes, {"s1": "completed"})
        assert isinstance(finished, RolloutFinished)
        assert finished.outcome == "rolled_back"
        assert "rolled back 1 of 1" in finished.reason
        assert "s3" in finished.reason
        assert "keep 2.0.0" in finished.reason
        assert fold([finished], r).state == "rolled_back"


class TestOperatorMoves:
    def test_cancel_stops_an_unfinished_rollout(self) -> None:
        r = running()
        events = rollouts.cancel_rollout(r, "wrong version", {"s1": "completed"})
        after = fold(events, r)
        assert after.state == "cancelled"
        assert after.finished
        finished = events[-1]
        assert isinstance(finished, RolloutFinished)
        assert finished.completed_servers == 1

    def test_a_finished_rollout_cannot_be_cancelled(self) -> None:
        r = fold(rollouts.cancel_rollout(running(), "once"), running())
        with pytest.raises(IllegalTransition, match="is cancelled"):
            rollouts.cancel_rollout(r, "twice")

    @pytest.mark.parametrize("halt", [False, True])
    def test_a_running_or_halted_rollout_can_be_rolled_back(self, halt: bool) -> None:
        r = running(rollback=False)
        if halt:
            r = fold(step(r, {"s1": "failed"}), r)
            assert r.state == "halted"
        assert fold(rollouts.request_rollback(r, "bad model"), r).state == "rolling_back"

    def test_a_completed_rollout_can_be_rolled_back_and_reopens(self) -> None:
        r = running(wave_sizes=[5])
        r = fold(step(r, dict.fromkeys(["s1", "s2", "s3", "s4", "s5"], "completed")), r)
        after = fold(rollouts.request_rollback(r, "customers complain"), r)
        assert (after.state, after.finished, after.rollback_reason) == (
            "rolling_back",
            False,
            "customers complain",
        )

    @pytest.mark.parametrize(
        ("state_events", "says"), [("scheduled", "cancel it instead"), ("cancelled", "was cancelled")]
    )
    def test_rollback_is_refused_when_nothing_can_be_undone(self, state_events: str, says: str) -> None:
        r = fold(rollouts.start_rollout(spec()))
        if state_events == "cancelled":
            r = fold(rollouts.cancel_rollout(r, "x"), r)
        with pytest.raises(IllegalTransition, match=says):
            rollouts.request_rollback(r, "undo")

    def test_a_rollout_rolling_back_cannot_be_asked_again(self) -> None:
        r = fold(rollouts.request_rollback(running(), "once"), running())
        with pytest.raises(IllegalTransition, match="already rolling back"):
            rollouts.request_rollback(r, "twice")


outcome_values = st.sampled_from(["completed", "failed", "cancelled", "open"])


@given(st.lists(outcome_values, min_size=1, max_size=12), st.floats(0, 1))
def test_a_wave_never_passes_with_a_ratio_above_its_threshold_and_never_halts_within_it(
    wave: list[Outcome], threshold: float
) -> None:
    servers = [f"s{i}" for i in range(len(wave))]
    r = running(servers=servers, wave_sizes=[len(servers)], threshold=threshold)
    events = step(r, dict(zip(servers, wave, strict=True)))
    ratio = wave.count("failed") / len(wave)
    halted = any(isinstance(e, RolloutHalted) for e in events)
    assert halted == (ratio > threshold)
    if not halted and "open" in wave:
        assert events == []
