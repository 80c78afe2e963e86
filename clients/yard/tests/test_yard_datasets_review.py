"""`yard datasets review` of one sample and in bulk, against the fake dataset-svc."""

from __future__ import annotations

import json

import grpc
import pytest
from dataset_fakes import FakeDatasetSvc, cat, sample
from yard_runner import Yard

from modelyard.v1 import datasets_pb2
from modelyard_events.domain_errors import NotFound
from modelyard_events.errors import ConcurrencyConflict
from modelyard_grpc import status_for

DOG = datasets_pb2.AnnotatorLabel(annotator="bob", annotation=datasets_pb2.Annotation(class_name="dog"))


def conflict() -> grpc.Status:
    """What the service answers when the sample moved past the expected version."""
    return status_for(ConcurrencyConflict("ds-1:s-1", 3, 4))


class TestOneSample:
    def test_approves_the_version_it_showed(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.samples = [sample("s-1", version=7)]
        result = dataset_yard("datasets", "review", "s-1", "--approve")
        assert result.exit_code == 0, result.output
        assert [c.method for c in dataset_svc.calls] == ["GetSample", "ReviewSample"]
        (request,) = dataset_svc.requests("ReviewSample")
        assert (request.sample_id, request.decision, request.expected_version) == (
            "s-1", datasets_pb2.REVIEW_DECISION_APPROVE, 7
        )  # fmt: skip
        assert "bob" in result.stdout  # the labels were shown
        assert result.stdout.splitlines()[-1] == "s-1  verified by rev  version 8"

    def test_rejects_with_the_reason(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.samples = [sample("s-1")]
        result = dataset_yard("datasets", "review", "s-1", "--reject", "--reason", "blurry", "--json")
        assert result.exit_code == 0, result.output
        (request,) = dataset_svc.requests("ReviewSample")
        assert (request.decision, request.reason) == (datasets_pb2.REVIEW_DECISION_REJECT, "blurry")
        assert json.loads(result.stdout)["state"] == "SAMPLE_STATE_REJECTED"

    def test_aborted_says_someone_else_changed_it_and_to_rerun(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.samples = [sample("s-1", version=3)]
        dataset_svc.refusals["ReviewSample"] = conflict()
        result = dataset_yard("datasets", "review", "s-1", "--approve")
        assert result.exit_code == 2
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: ABORTED: stream 'ds-1:s-1' is at version 4, not the expected 3")
        assert "changed s-1 after version 3 was shown" in lines[1]
        assert "Re-run `yard datasets review s-1" in lines[1]

    def test_other_refusals_get_no_such_advice(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.refusals["GetSample"] = status_for(NotFound("sample s-9 not found"))
        result = dataset_yard("datasets", "review", "s-9", "--approve")
        assert result.stderr.splitlines() == ["error: NOT_FOUND: sample s-9 not found"]

    @pytest.mark.parametrize(
        "args",
        [
            ("s-1",),
            ("s-1", "--approve", "--reject", "--reason", "x"),
            ("s-1", "--reject"),
            ("--approve",),
            ("s-1", "--dataset", "ds-1", "--all-labeled", "--approve"),
            ("--dataset", "ds-1", "--all-labeled", "--reject", "--reason", "x"),
            ("--dataset", "ds-1", "--approve"),
        ],
    )
    def test_contradicting_or_missing_options_are_refused_before_any_call(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, args: tuple[str, ...]
    ) -> None:
        assert dataset_yard("datasets", "review", *args).exit_code == 2
        assert dataset_svc.calls == []


class TestBulk:
    BULK = ("datasets", "review", "--dataset", "ds-1", "--all-labeled", "--approve")

    def test_approves_only_samples_whose_annotators_agree_enough(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.max_page_size = 2
        dataset_svc.samples = [
            sample("s-1", version=5),
            sample("s-2", labels=[cat(), DOG], agreement=0.5, consensus=None),  # no consensus
            sample("s-3", agreement=0.6),  # below --min-agreement
            sample("s-4", state=datasets_pb2.SAMPLE_STATE_VERIFIED),  # not labeled: not listed
            sample("s-5", agreement=0.8, version=9),
        ]
        result = dataset_yard(*self.BULK, "--min-agreement", "0.8")
        assert result.exit_code == 0, result.output
        listed = dataset_svc.requests("ListSamples")
        assert all(list(r.states) == [datasets_pb2.SAMPLE_STATE_LABELED] for r in listed)
        assert [r.page_token for r in listed] == ["", "2"]
        reviewed = sorted(
            (r.sample_id, r.expected_version, r.decision) for r in dataset_svc.requests("ReviewSample")
        )
        assert reviewed == [
            ("s-1", 5, datasets_pb2.REVIEW_DECISION_APPROVE),
            ("s-5", 9, datasets_pb2.REVIEW_DECISION_APPROVE),
        ]
        assert result.stdout.splitlines() == [
            "approved 2",
            "skipped 2 (1 without consensus, 1 below agreement 0.80)",
        ]

    def test_reviews_run_concurrently_up_to_the_limit(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.samples = [sample(f"s-{n}") for n in range(8)]
        dataset_svc.review_delay_s = 0.05
        result = dataset_yard(*self.BULK, "--concurrency", "3")
        assert result.exit_code == 0, result.output
        assert len(dataset_svc.requests("ReviewSample")) == 8
        assert dataset_svc.most_reviews_in_flight == 3

    def test_aborted_and_failed_reviews_are_counted(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.samples = [sample("s-1"), sample("s-2"), sample("s-3")]
        dataset_svc.review_refusals = {"s-1": conflict(), "s-3": status_for(NotFound("sample s-3 not found"))}
        result = dataset_yard(*self.BULK, "--json")
        assert result.exit_code == 2
        document = json.loads(result.stdout)
        assert (document["approved"], document["aborted"], document["failed"]) == (1, 1, 1)
        assert document["failures"] == ["s-3: NOT_FOUND: sample s-3 not found"]

    def test_aborted_alone_is_no_failure(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.samples = [sample("s-1"), sample("s-2")]
        dataset_svc.review_refusals = {"s-1": conflict()}
        result = dataset_yard(*self.BULK)
        assert result.exit_code == 0, result.output
        assert "aborted 1 (changed by someone else meanwhile; re-run to review them)" in result.stdout
