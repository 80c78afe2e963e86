"""Lifecycle, four eyes, gates, release, limits and rollback, decided without I/O."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from registry_builders import (
    MODULE,
    NOW,
    ORG,
    apply_all,
    approved,
    evaluated,
    registered,
    registration,
    report,
    sign,
)

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, PermissionDenied, QuotaExceeded
from modelyard_events.schemas.registry import ModelDeprecated, ModelReleased
from modelyard_registry.domain.gates import Gate, check_gates, judged
from modelyard_registry.domain.module import ModelModule

GATES = [
    Gate(metric="f1", min=0.9),
    Gate(metric="min_class_recall", min=0.8),
    Gate(metric="latency_p95_ms", max=20),
]


def _approved(job: str = "job-1") -> ModelModule:
    module = evaluated(job)
    v = f"v-{job}"
    return apply_all(module, module.approve(v, "carol", judged(GATES, report()), sign, NOW))


def test_evaluation_moves_draft_to_testing_and_its_failure_back_with_the_reason() -> None:
    module = registered("job-1")
    module = apply_all(
        module, module.request_evaluation("v-job-1", "e1", "eval-1", "dataset://x", "val", "bob")
    )
    assert module.get("v-job-1").status == "testing"
    module = apply_all(module, module.record_evaluation_failure("eval-1", "dataset not ready"))
    version = module.get("v-job-1")
    assert (version.status, version.status_reason) == ("draft", "dataset not ready")
    assert module.record_evaluation_failure("eval-1", "again") == []  # a redelivery decides nothing


@pytest.mark.parametrize(
    "move",
    [
        lambda m: m.approve("v-job-1", "carol", [], sign, NOW),
        lambda m: m.release("v-job-1", "production", "notes", "carol", NOW, 5),
        lambda m: m.deprecate("v-job-1", "carol", "old"),
        lambda m: m.reject("v-job-1", "carol", "bad"),
    ],
    ids=["approve", "release", "deprecate", "reject"],
)
def test_moves_a_draft_does_not_allow_are_refused_naming_the_state_and_what_is_allowed(
    move: Callable[[ModelModule], object],
) -> None:
    module = registered("job-1")
    with pytest.raises(IllegalTransition, match=r"it is draft, and .* needs .*; from draft you can evaluate"):
        move(module)


def test_approval_waits_for_the_evaluation_to_finish() -> None:
    module = registered("job-1")
    module = apply_all(
        module, module.request_evaluation("v-job-1", "e1", "eval-1", "dataset://x", "val", "bob")
    )
    with pytest.raises(IllegalTransition, match="evaluation has not finished"):
        module.approve("v-job-1", "carol", [], sign, NOW)


def test_four_eyes_the_jobs_creator_and_the_evaluations_requester_cannot_approve() -> None:
    module = evaluated(requester="bob")
    with pytest.raises(PermissionDenied, match="alice created training job"):
        module.approve("v-job-1", "alice", [], sign, NOW)
    with pytest.raises(PermissionDenied, match="bob requested the evaluation"):
        module.approve("v-job-1", "bob", [], sign, NOW)
    approved = apply_all(module, module.approve("v-job-1", "carol", [], sign, NOW))
    version = approved.get("v-job-1")
    assert version.status == "approved"
    assert version.approval is not None
    assert version.approval.approved_by == "carol"


def test_a_failing_gate_is_named_with_its_threshold_and_the_measured_value() -> None:
    module = evaluated(figures=report(f1=0.71, recalls=(0.5, 0.95), p95=31.0))
    results = judged(GATES, module.get("v-job-1").evaluation.report)  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition) as refused:
        module.approve("v-job-1", "carol", results, sign, NOW)
    message = str(refused.value)
    assert "f1 >= 0.9 failed: measured 0.71, threshold 0.9" in message
    assert "min_class_recall >= 0.8 failed: measured 0.5" in message
    assert "latency_p95_ms <= 20 failed: measured 31" in message


def test_a_gate_needs_exactly_one_bound() -> None:
    with pytest.raises(ValueError, match="exactly one of min or max"):
        Gate(metric="f1", min=0.5, max=0.9)
    check_gates(judged(GATES, report()), "1.0.0")  # all pass: no error


def test_reject_needs_a_reason_and_sends_the_version_back_to_draft() -> None:
    module = _approved()
    with pytest.raises(InvalidArgument, match="reason"):
        module.reject("v-job-1", "dave", "")
    module = apply_all(module, module.reject("v-job-1", "dave", "bias found in class 3"))
    assert module.get("v-job-1").status == "draft"
    assert module.get("v-job-1").approval is None


def test_one_current_release_per_environment_and_release_needs_notes() -> None:
    module = _approved("job-1")
    with pytest.raises(InvalidArgument, match="notes"):
        module.release("v-job-1", "production", "  ", "carol", NOW, 5)
    with pytest.raises(InvalidArgument, match="environment"):
        module.release("v-job-1", "Prod uction", "n", "carol", NOW, 5)
    module = apply_all(module, module.release("v-job-1", "production", "first", "carol", NOW, 5))
    assert module.current == {"production": "v-job-1"}
    assert module.get("v-job-1").status == "released"
    with pytest.raises(IllegalTransition, match="already the current release"):
        module.release("v-job-1", "production", "again", "carol", NOW, 5)


def test_the_plans_active_version_limit_is_enforced_on_release() -> None:
    module = approved("j1", "j2")
    module = apply_all(module, module.release("v-j1", "production", "one", "carol", NOW, 1))
    with pytest.raises(QuotaExceeded, match="limit is 1 active models per module"):
        module.release("v-j2", "staging", "two", "carol", NOW, 1)


def test_rollback_releases_the_earlier_version_and_deprecates_the_current_in_one_decision() -> None:
    module = approved("j1", "j2")
    module = apply_all(module, module.release("v-j1", "production", "one", "carol", NOW, 5))
    module = apply_all(module, module.release("v-j2", "production", "two", "carol", NOW, 5))
    assert module.get("v-j1").environments == frozenset()  # replaced, still active
    with pytest.raises(IllegalTransition, match="not earlier than the current"):
        module.rollback("v-j2", "production", "carol", "why", NOW)
    with pytest.raises(InvalidArgument, match="reason"):
        module.rollback("v-j1", "production", "carol", "", NOW)
    events = module.rollback("v-j1", "production", "carol", "accuracy dropped on site 4", NOW)
    assert [type(e) for e in events] == [ModelReleased, ModelDeprecated]
    module = apply_all(module, events)
    assert module.current == {"production": "v-j1"}
    assert module.get("v-j2").status == "deprecated"
    with pytest.raises(IllegalTransition, match="deprecated is final"):
        module.release("v-j2", "production", "back", "carol", NOW, 5)


def test_an_evaluation_measured_on_other_data_than_asked_fails_the_evaluation() -> None:
    module = registered("job-1")
    module = apply_all(
        module, module.request_evaluation("v-job-1", "e1", "eval-1", "dataset://x", "val", "bob")
    )
    other = report().model_copy(update={"split": "train"})

    module = apply_all(module, module.record_evaluation("eval-1", other))

    version = module.get("v-job-1")
    assert version.status == "draft"
    assert "measured dataset://x (train), not dataset://x (val)" in version.status_reason


def test_going_back_in_an_environment_is_a_rollback_not_a_release() -> None:
    module = approved("j1", "j2")
    module = apply_all(module, module.release("v-j1", "production", "one", "carol", NOW, 5))
    module = apply_all(module, module.release("v-j2", "production", "two", "carol", NOW, 5))

    with pytest.raises(IllegalTransition, match="going back is a rollback"):
        module.release("v-j1", "production", "again", "carol", NOW, 5)
    module.release("v-j1", "staging", "fine elsewhere", "carol", NOW, 5)  # another environment is fine


def test_a_version_whose_creator_is_unknown_is_not_approved_by_anyone() -> None:
    module = ModelModule(ORG, MODULE)
    module = apply_all(module, module.register(registration("j1", created_by="")))
    module = apply_all(module, module.request_evaluation("v-j1", "e", "ev", "dataset://x", "val", "bob"))
    module = apply_all(module, module.record_evaluation("ev", report()))

    with pytest.raises(PermissionDenied, match="four eyes cannot be checked"):
        module.approve("v-j1", "carol", [], sign, NOW)


def test_per_class_gates_a_truncated_report_cannot_prove_fail() -> None:
    big = report().model_copy(update={"classes_total": 300})
    results = judged([Gate(metric="min_class_f1", min=0.1), Gate(metric="min_class_recall", min=0.1)], big)
    assert [r.passed for r in results] == [False, True]
