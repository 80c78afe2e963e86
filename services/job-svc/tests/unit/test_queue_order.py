"""Queue order (priority, fair share per organization, age) and dispatch planning onto free slots."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard_job.domain import PlannedDispatch, QueueEntry, TrainerCapacity, order_queue, plan_dispatches

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def entry(job_id: str, org_id: str = "org-a", priority: int = 50, age_s: int = 0) -> QueueEntry:
    """A job queued `age_s` seconds after T0 (larger = younger)."""
    return QueueEntry(
        job_id=job_id, org_id=org_id, priority=priority, queued_at=T0 + timedelta(seconds=age_s)
    )


def ids(entries: list[QueueEntry]) -> list[str]:
    return [e.job_id for e in entries]


class TestOrderingTheQueue:
    def test_a_higher_priority_goes_first_whatever_its_age_or_organization(self) -> None:
        queue = [entry("old-low", priority=10, age_s=0), entry("new-high", "org-b", priority=90, age_s=60)]

        assert ids(order_queue(queue, {"org-b": 5})) == ["new-high", "old-low"]

    def test_the_organization_with_fewer_running_jobs_goes_first_at_equal_priority(self) -> None:
        queue = [entry("a1", "org-a", age_s=0), entry("b1", "org-b", age_s=60)]

        assert ids(order_queue(queue, {"org-a": 2, "org-b": 1})) == ["b1", "a1"]

    def test_jobs_placed_earlier_count_as_running_so_equal_organizations_alternate(self) -> None:
        queue = [entry("a1", "org-a", age_s=0), entry("a2", "org-a", age_s=1), entry("a3", "org-a", age_s=2)]
        queue += [entry("b1", "org-b", age_s=10), entry("b2", "org-b", age_s=11)]

        assert ids(order_queue(queue, {})) == ["a1", "b1", "a2", "b2", "a3"]

    def test_the_older_job_goes_first_at_equal_priority_and_load(self) -> None:
        queue = [entry("young", age_s=60), entry("old", age_s=0)]

        assert ids(order_queue(queue, {})) == ["old", "young"]

    def test_the_job_id_breaks_exact_ties_so_every_replica_agrees(self) -> None:
        queue = [entry("j-2"), entry("j-1")]

        assert ids(order_queue(queue, {})) == ["j-1", "j-2"]

    def test_the_running_counts_given_are_not_modified(self) -> None:
        running = {"org-a": 1}

        order_queue([entry("a1"), entry("a2")], running)

        assert running == {"org-a": 1}


class TestPlanningDispatches:
    def test_jobs_go_in_queue_order_to_the_trainer_with_most_free_slots(self) -> None:
        queue = [entry("j-1", age_s=0), entry("j-2", age_s=1), entry("j-3", age_s=2)]
        trainers = [TrainerCapacity("t-small", 1), TrainerCapacity("t-big", 2)]

        assert plan_dispatches(queue, trainers, {}) == [
            PlannedDispatch("j-1", "t-big"),
            PlannedDispatch("j-2", "t-big"),
            PlannedDispatch("j-3", "t-small"),
        ]

    def test_trainers_with_equal_free_slots_are_taken_by_id(self) -> None:
        plan = plan_dispatches([entry("j-1")], [TrainerCapacity("t-2", 1), TrainerCapacity("t-1", 1)], {})

        assert plan == [PlannedDispatch("j-1", "t-1")]

    def test_jobs_beyond_the_free_slots_stay_queued(self) -> None:
        plan = plan_dispatches([entry("j-1"), entry("j-2")], [TrainerCapacity("t-1", 1)], {})

        assert plan == [PlannedDispatch("j-1", "t-1")]

    def test_nothing_is_dispatched_without_free_slots(self) -> None:
        assert plan_dispatches([entry("j-1")], [TrainerCapacity("t-1", 0)], {}) == []

    def test_fair_share_is_recomputed_as_the_plan_fills(self) -> None:
        queue = [entry("a1", "org-a", age_s=0), entry("a2", "org-a", age_s=1), entry("b1", "org-b", age_s=5)]

        plan = plan_dispatches(queue, [TrainerCapacity("t-1", 2)], {})

        assert [p.job_id for p in plan] == ["a1", "b1"]

    def test_a_negative_free_slot_count_is_refused(self) -> None:
        with pytest.raises(ValueError, match="free_slots must be >= 0"):
            TrainerCapacity("t-1", -1)


# ---- properties ---------------------------------------------------------------------------------


ORGS = ["org-a", "org-b", "org-c"]
# Few organizations, priorities and ages, so that ties, the case the rules are about, are common.
queues = st.lists(
    st.tuples(st.sampled_from(ORGS), st.sampled_from([0, 50, 100]), st.integers(0, 5)), max_size=30
).map(
    lambda rows: [entry(f"j-{i:02d}", org, priority, age_s) for i, (org, priority, age_s) in enumerate(rows)]
)
running_counts = st.dictionaries(st.sampled_from(ORGS), st.integers(0, 4))
trainer_lists = st.lists(
    st.builds(TrainerCapacity, st.sampled_from(["t-1", "t-2", "t-3", "t-4"]), st.integers(0, 4)),
    unique_by=lambda t: t.trainer_id,
    max_size=4,
)


class TestQueueOrderProperties:
    @settings(max_examples=200)
    @given(queue=queues, running=running_counts)
    def test_every_job_appears_once(self, queue: list[QueueEntry], running: dict[str, int]) -> None:
        assert sorted(ids(order_queue(queue, running))) == sorted(ids(queue))

    @settings(max_examples=200)
    @given(queue=queues, running=running_counts)
    def test_priority_is_never_inverted(self, queue: list[QueueEntry], running: dict[str, int]) -> None:
        priorities = [e.priority for e in order_queue(queue, running)]

        assert priorities == sorted(priorities, reverse=True)

    @settings(max_examples=200)
    @given(queue=queues, running=running_counts)
    def test_at_equal_priority_no_busier_organization_is_ahead_and_ages_order_the_rest(
        self, queue: list[QueueEntry], running: dict[str, int]
    ) -> None:
        ordered = order_queue(queue, running)
        load = Counter(running)
        for i, placed in enumerate(ordered):
            # At each place, counting the jobs placed before it as running, nothing that comes later
            # at the same priority has a less busy organization, or the same load and an earlier age.
            for later in ordered[i + 1 :]:
                if later.priority == placed.priority:
                    mine = (load[placed.org_id], placed.queued_at, placed.job_id)
                    theirs = (load[later.org_id], later.queued_at, later.job_id)
                    assert mine <= theirs
            load[placed.org_id] += 1

    @settings(max_examples=200)
    @given(queue=queues, running=running_counts)
    def test_within_one_organization_and_priority_older_jobs_go_first(
        self, queue: list[QueueEntry], running: dict[str, int]
    ) -> None:
        ordered = order_queue(queue, running)
        for org in ORGS:
            for priority in (0, 50, 100):
                same = [
                    (e.queued_at, e.job_id) for e in ordered if e.org_id == org and e.priority == priority
                ]
                assert same == sorted(same)


class TestDispatchPlanProperties:
    @settings(max_examples=200)
    @given(queue=queues, trainers=trainer_lists, running=running_counts)
    def test_no_trainer_gets_more_jobs_than_its_free_slots(
        self, queue: list[QueueEntry], trainers: list[TrainerCapacity], running: dict[str, int]
    ) -> None:
        given_to = Counter(p.trainer_id for p in plan_dispatches(queue, trainers, running))

        for trainer in trainers:
            assert given_to[trainer.trainer_id] <= trainer.free_slots

    @settings(max_examples=200)
    @given(queue=queues, trainers=trainer_lists, running=running_counts)
    def test_the_plan_fills_every_free_slot_with_the_head_of_the_queue(
        self, queue: list[QueueEntry], trainers: list[TrainerCapacity], running: dict[str, int]
    ) -> None:
        plan = plan_dispatches(queue, trainers, running)
        free = sum(t.free_slots for t in trainers)

        assert len(plan) == min(len(queue), free)
        assert [p.job_id for p in plan] == ids(order_queue(queue, running))[: len(plan)]
