"""The fault campaign's schedule and summary; run with `.venv/bin/pytest bench/test_chaos_plan.py`."""

import itertools

from chaos_plan import KINDS, markdown, percentile, plan_faults, recovery_rows


def test_the_same_seed_plans_the_same_faults_and_another_seed_others() -> None:
    assert plan_faults(7, 150, 14) == plan_faults(7, 150, 14)
    assert plan_faults(7, 150, 14) != plan_faults(8, 150, 14)


def test_every_kind_is_injected_when_the_window_has_room_for_all() -> None:
    planned = plan_faults(3, 5 + 14 * len(KINDS), 14)
    assert sorted(f.kind for f in planned) == sorted(KINDS)


def test_faults_keep_their_gap_and_stay_inside_the_window() -> None:
    planned = plan_faults(11, 150, 14)
    moments = [f.at_s for f in planned]
    assert moments == sorted(moments)
    assert all(later - earlier >= 14 / 2 for earlier, later in itertools.pairwise(moments))
    assert all(5 <= at < 150 for at in moments)


def test_a_window_too_short_for_one_fault_plans_none() -> None:
    assert plan_faults(1, 10, 14) == []


def test_percentiles_interpolate_and_survive_one_value() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([7.0], 0.5) == 7.0


def test_the_table_lists_every_kind_with_dashes_where_none_was_injected() -> None:
    rows = recovery_rows({"job-svc": [2.0, 4.0]})
    table = markdown(
        {
            "acknowledged": 9,
            "lost": 0,
            "applied_twice": 0,
            "replay_differences": 0,
            "chains_broken": 0,
            "stuck": 0,
        },
        rows,
    )
    assert "| job-svc | 2 | 3.0 | 4.0 |" in table
    assert "| broker | 0 | — | — |" in table
    assert "| 9 | 0 | 0 | 0 | 0 | 0 |" in table
