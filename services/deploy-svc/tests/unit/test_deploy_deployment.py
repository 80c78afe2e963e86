"""The Deployment aggregate: creation, agent reports, backoff, the conductor's fail, retry and cancel."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from deploy_builders import NOW, deployment_spec
from hypothesis import given
from hypothesis import strategies as st

from modelyard_deploy.domain import deployment as deployments
from modelyard_deploy.domain.backoff import MAX_BACKOFF_S, backoff_s, jitter_share
from modelyard_deploy.domain.deployment import Deployment
from modelyard_deploy.domain.deployment_reports import AgentReport, report
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, InvalidFields
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.deploy import DeploymentCreated, DeploymentProgressed, DeploymentRetried


def created(**changes: Any) -> Deployment:
    [event] = deployments.create_deployment(deployment_spec(**changes))
    assert isinstance(event, DeploymentCreated)
    return Deployment.created(event, NOW)


def after(d: Deployment, events: list[DomainEvent], seconds: float = 1) -> Deployment:
    for event in events:
        d = d.apply(event, NOW + timedelta(seconds=seconds))
    return d


def moved(d: Deployment, status: str, percent: int = 0, phase: str = "", **more: object) -> Deployment:
    events = report(d, AgentReport(d.attempt, status, phase or status, percent, **more), NOW)  # type: ignore[arg-type]
    assert events, f"{status} {percent} decided nothing"
    return after(d, events)


class TestCreatingADeployment:
    def test_a_new_deployment_is_pending_at_attempt_one(self) -> None:
        d = created()
        assert (d.status, d.attempt, d.retry_count, d.stream_version) == ("pending", 1, 0, 1)
        assert d.previous_version_id == "v1"

    def test_a_deadline_before_the_schedule_is_refused_with_every_wrong_field(self) -> None:
        with pytest.raises(InvalidFields) as refused:
            deployments.create_deployment(deployment_spec(deadline_at=NOW, max_retries=101))
        assert set(refused.value.problems) == {"deadline_at", "max_retries"}


class TestAgentReports:
    def test_the_legal_path_ends_completed_at_100_percent_with_times_recorded(self) -> None:
        d = moved(moved(moved(created(), "downloading", 10), "installing", 0, "verifying"), "completed")
        assert (d.status, d.progress_percent) == ("completed", 100)
        assert d.started_at is not None
        assert d.completed_at is not None

    def test_a_cache_hit_goes_from_pending_straight_to_installing(self) -> None:
        assert moved(created(), "installing").status == "installing"

    def test_pending_may_fail_at_once(self) -> None:
        assert moved(created(), "failed", error="disk full").status == "failed"

    def test_an_agent_restarted_while_installing_may_download_again(self) -> None:
        d = moved(moved(created(), "installing", 0, "verifying"), "downloading", 100, "resuming")
        assert (d.status, d.phase) == ("downloading", "resuming")

    def test_a_refusal_names_what_the_agent_may_report_next(self) -> None:
        done = moved(moved(created(), "installing", 0, "verifying"), "completed", 100, "completed")
        with pytest.raises(IllegalTransition, match="takes no further reports for this attempt"):
            report(done, AgentReport(1, "downloading", "downloading", 10), NOW)

    def test_a_completion_whose_earlier_reports_were_lost_is_taken(self) -> None:
        # Under load the agent's downloading and installing reports may time out; its final word
        # still counts, so a finished install does not wait for its deadline.
        assert moved(created(), "completed", 100, "completed").status == "completed"
        assert moved(moved(created(), "downloading", 40), "completed", 100, "completed").status == "completed"

    def test_progress_is_recorded_only_in_steps_of_five_points_or_at_100(self) -> None:
        d = moved(created(), "downloading", 10)
        assert report(d, AgentReport(1, "downloading", "downloading", 14), NOW) == []
        assert report(d, AgentReport(1, "downloading", "downloading", 15), NOW) != []
        d = moved(d, "downloading", 98)
        assert report(d, AgentReport(1, "downloading", "downloading", 100), NOW) != []

    def test_a_new_phase_within_a_status_is_recorded_whatever_the_percent(self) -> None:
        d = moved(created(), "installing", 0, "verifying")
        assert report(d, AgentReport(1, "installing", "loading", 1), NOW) != []

    def test_a_repeated_report_decides_nothing(self) -> None:
        d = moved(created(), "downloading", 40)
        assert report(d, AgentReport(1, "downloading", "downloading", 40), NOW) == []
        done = moved(moved(d, "installing"), "completed")
        assert report(done, AgentReport(1, "completed", "switching", 100), NOW) == []

    def test_a_report_for_an_older_attempt_is_stale(self) -> None:
        d = moved(created(), "failed", error="reset")
        d = after(d, deployments.retry(d, False, "again", NOW, 60))
        assert report(d, AgentReport(1, "completed"), NOW) == []

    def test_a_report_for_an_attempt_that_does_not_exist_yet_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="attempt"):
            report(created(), AgentReport(2, "downloading"), NOW)

    def test_a_report_to_a_cancelled_deployment_decides_nothing(self) -> None:
        d = created()
        d = after(d, deployments.cancel(d, "not now"))
        assert report(d, AgentReport(1, "downloading", "downloading", 50), NOW) == []

    def test_after_completed_another_status_of_the_same_attempt_is_refused(self) -> None:
        d = moved(moved(created(), "installing"), "completed")
        with pytest.raises(IllegalTransition, match="takes no further reports"):
            report(d, AgentReport(1, "failed", error="late"), NOW)

    def test_percent_outside_0_to_100_and_statuses_agents_do_not_report_are_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="percent"):
            report(created(), AgentReport(1, "downloading", percent=101), NOW)
        with pytest.raises(InvalidArgument, match="status"):
            report(created(), AgentReport(1, "cancelled"), NOW)


class TestFailuresAndBackoff:
    def test_a_retryable_failure_gets_a_retry_time_from_the_backoff(self) -> None:
        d = moved(created(), "failed", error="connection reset")
        assert d.retry_at is not None
        delay = (d.retry_at - NOW).total_seconds()
        assert 10 <= delay < 11
        assert d.outcome == "open"

    def test_a_failure_the_agent_calls_final_is_not_retried(self) -> None:
        d = moved(created(), "failed", error="bad signature", retryable=False)
        assert d.retry_at is None
        assert d.outcome == "failed"

    def test_no_retry_is_planned_once_retries_are_exhausted(self) -> None:
        d = replace(moved(created(), "downloading"), retry_count=3)
        assert moved(d, "failed", error="x").retry_at is None

    def test_no_retry_is_planned_when_it_would_come_after_the_deadline(self) -> None:
        d = moved(created(deadline_at=NOW + timedelta(seconds=5)), "downloading")
        assert moved(d, "failed", error="x").retry_at is None

    def test_backoff_doubles_and_is_capped_at_an_hour(self) -> None:
        assert backoff_s("d", 10, 1) == pytest.approx(2 * backoff_s("d", 10, 0))
        assert backoff_s("d", 10, 30) <= MAX_BACKOFF_S * 1.1

    def test_servers_failing_together_retry_at_different_times(self) -> None:
        retry_times = set()
        for i in range(20):
            failed = moved(created(deployment_id=f"d-{i}"), "failed", error="registry unreachable")
            retry_times.add(failed.retry_at)
        assert len(retry_times) == 20

    def test_the_jitter_differs_between_deployments_but_not_between_calls(self) -> None:
        shares = {jitter_share(f"deployment-{i}") for i in range(50)}
        assert len(shares) == 50
        assert jitter_share("deployment-1") == jitter_share("deployment-1")

    @given(st.text(min_size=1, max_size=40), st.floats(0.1, 1000), st.integers(0, 200))
    def test_backoff_stays_within_base_doubling_cap_and_ten_percent(
        self, deployment_id: str, base: float, retries: int
    ) -> None:
        delay = backoff_s(deployment_id, base, retries)
        plain = min(base * 2.0 ** min(retries, 32), MAX_BACKOFF_S)
        assert plain <= delay < plain * 1.1 + 1e-9


class TestTheConductorsMoves:
    def test_fail_records_the_reason_as_the_conductors(self) -> None:
        d = moved(created(), "downloading", 30)
        [event] = deployments.fail(d, "agent silent for 300 s while downloading", NOW, retryable=True)
        assert isinstance(event, DeploymentProgressed)
        assert (event.reported_by, event.status, event.progress_percent) == ("conductor", "failed", 30)
        assert event.retry_at is not None

    def test_a_finished_deployment_cannot_be_failed(self) -> None:
        d = moved(moved(created(), "installing"), "completed")
        with pytest.raises(IllegalTransition, match="is completed"):
            deployments.fail(d, "deadline", NOW, retryable=False)

    def test_an_automatic_retry_waits_for_its_time_and_keeps_the_deadline(self) -> None:
        d = moved(created(), "failed", error="reset")
        assert d.retry_at is not None
        with pytest.raises(IllegalTransition, match="due at"):
            deployments.retry(d, True, "backoff", NOW, 0)
        [event] = deployments.retry(d, True, "backoff", d.retry_at, 0)
        assert isinstance(event, DeploymentRetried)
        assert (event.attempt, event.retry_count, event.deadline_at) == (2, 1, d.deadline_at)
        again = after(d, [event])
        assert (again.status, again.retry_at, again.error_message, again.completed_at) == (
            "pending",
            None,
            "",
            None,
        )

    def test_an_operator_retries_an_exhausted_deployment_with_a_new_deadline(self) -> None:
        d = moved(created(), "failed", error="bad signature", retryable=False)
        with pytest.raises(IllegalTransition, match="no automatic retry"):
            deployments.retry(d, True, "", NOW, 0)
        [event] = deployments.retry(d, False, "fixed the key", NOW + timedelta(hours=3), 600)
        assert isinstance(event, DeploymentRetried)
        assert event.deadline_at == NOW + timedelta(hours=3, seconds=600)

    def test_only_failed_deployments_are_retried(self) -> None:
        with pytest.raises(IllegalTransition, match="only failed"):
            deployments.retry(created(), False, "", NOW, 60)

    @pytest.mark.parametrize("status", ["pending", "downloading", "installing", "failed"])
    def test_cancel_is_allowed_until_completed(self, status: str) -> None:
        d = created() if status == "pending" else moved(created(), status, error="x")
        cancelled = after(d, deployments.cancel(d, "operator"))
        assert (cancelled.status, cancelled.outcome) == ("cancelled", "cancelled")

    def test_a_completed_deployment_is_rolled_back_not_cancelled(self) -> None:
        d = moved(moved(created(), "installing"), "completed")
        with pytest.raises(IllegalTransition, match="roll it back instead"):
            deployments.cancel(d, "oops")

    def test_a_cancelled_deployment_cannot_be_cancelled_again(self) -> None:
        d = created()
        d = after(d, deployments.cancel(d, "once"))
        with pytest.raises(IllegalTransition, match="is cancelled"):
            deployments.cancel(d, "twice")
