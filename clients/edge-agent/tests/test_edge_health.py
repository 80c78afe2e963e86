"""The health gate's verdict: ratios with absolute slack, agreement on shared classes, no old model."""

from __future__ import annotations

import pytest

from modelyard_edge.health import Figures, Limits, agreement_of, judge_health

OLD = Figures("v-old", load_time_ms=100.0, latency_p95_ms=1.0)


def new(load_ms: float = 100.0, p95_ms: float = 1.0) -> Figures:
    return Figures("v-new", load_time_ms=load_ms, latency_p95_ms=p95_ms)


class TestRatios:
    def test_a_model_within_every_limit_passes(self) -> None:
        verdict = judge_health(new(250.0, 1.9), OLD, 0.9, 3, Limits(), probes=32)
        assert verdict.passed
        assert verdict.reasons == []
        assert (verdict.probes, verdict.old, verdict.agreement, verdict.compared_classes) == (32, OLD, 0.9, 3)

    def test_a_slower_load_beyond_ratio_and_slack_fails_naming_figures_and_limit(self) -> None:
        verdict = judge_health(new(load_ms=400.0), OLD, None, 0, Limits(load_time_slack_ms=250.0))
        assert not verdict.passed
        assert verdict.reasons == [
            "load time is 400.00 ms against 100.00 ms for the running version (4.00x), above the limit "
            "of 3x plus 250 ms of slack"
        ]

    def test_a_difference_below_the_slack_passes_whatever_the_ratio(self) -> None:
        tiny = Figures("v-old", 1.0, 0.1)
        assert judge_health(Figures("v-new", 200.0, 1.5), tiny, None, 0, Limits()).passed

    def test_latency_beyond_ratio_and_slack_fails(self) -> None:
        limits = Limits(max_p95_latency_ratio=2.0, latency_slack_ms=2.0)
        verdict = judge_health(new(p95_ms=2.9), OLD, None, 0, limits)
        assert verdict.passed  # 2.9x, but 1.9 ms more: within the slack
        verdict = judge_health(new(p95_ms=3.5), OLD, None, 0, Limits(latency_slack_ms=0.5))
        assert not verdict.passed
        assert verdict.reasons[0].startswith("p95 latency is 3.50 ms against 1.00 ms")
        assert "limit of 2x plus 0.5 ms of slack" in verdict.reasons[0]

    def test_each_broken_limit_is_a_reason(self) -> None:
        limits = Limits(load_time_slack_ms=0, latency_slack_ms=0, min_agreement=0.9)
        verdict = judge_health(new(1000.0, 10.0), OLD, 0.5, 2, limits)
        assert len(verdict.reasons) == 3
        assert verdict.reasons[2] == (
            "agreement with version v-old is 50.0% on 2 shared classes, below the minimum of 90.0%"
        )


class TestWithoutComparison:
    def test_no_old_model_passes_on_its_own_figures(self) -> None:
        verdict = judge_health(new(99_999.0, 999.0), None, None, 0, Limits(min_agreement=1.0))
        assert verdict.passed
        assert verdict.old is None

    def test_agreement_is_not_judged_when_unmeasured(self) -> None:
        assert judge_health(new(), OLD, None, 0, Limits(min_agreement=1.0)).passed


class TestAgreement:
    def test_share_of_probes_with_the_same_class(self) -> None:
        assert agreement_of(["a", "b", "a", "c"], ["a", "b", "b", "c"], ["a", "b", "c"], ["a", "b", "c"]) == (
            0.75,
            3,
        )

    def test_probes_whose_old_class_the_new_model_lacks_are_not_compared(self) -> None:
        agreement, compared = agreement_of(["a", "a", "b"], ["a", "z", "b"], ["a", "b"], ["a", "b", "z"])
        assert (agreement, compared) == (1.0, 2)

    @pytest.mark.parametrize(("new_classes", "old_classes"), [(["a"], ["b"]), (None, ["a"]), (["a"], None)])
    def test_none_without_shared_classes(
        self, new_classes: list[str] | None, old_classes: list[str] | None
    ) -> None:
        agreement, _ = agreement_of(["a"], ["b"], new_classes, old_classes)
        assert agreement is None

    def test_defaults_are_the_deploy_events(self) -> None:
        from modelyard_events.schemas.deploy import HealthLimits

        events = HealthLimits()
        limits = Limits()
        assert (limits.max_load_time_ratio, limits.max_p95_latency_ratio, limits.min_agreement) == (
            events.max_load_time_ratio,
            events.max_p95_latency_ratio,
            events.min_agreement,
        )
