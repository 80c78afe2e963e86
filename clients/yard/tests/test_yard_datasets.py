"""yard's dataset commands (create, list, show, publish, readiness) end to end against the fake dataset-svc,
and how they connect."""

from __future__ import annotations

import json
from pathlib import Path

from dataset_fakes import FakeDatasetSvc, dataset, readiness, sample
from yard_runner import TOKEN, Yard

from modelyard.v1 import datasets_pb2
from modelyard_events.domain_errors import NotFound
from modelyard_grpc import status_for
from modelyard_grpc.testing import TEST_ISSUER, verifier_for


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the rendered tables in `text`."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


CREATE = ("datasets", "create", "pets", "--module", "vision", "--env", "staging", "--task", "classification")


class TestCreate:
    def test_sends_the_name_module_environment_and_schema(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        result = dataset_yard(*CREATE, "--classes", "cat, dog,bird", "--org", "acme", "--request-id", "r-1")
        assert result.exit_code == 0, result.output
        (request,) = dataset_svc.requests("CreateDataset")
        assert (request.name, request.ai_module, request.org_id, request.request_id) == (
            "pets",
            "vision",
            "acme",
            "r-1",
        )
        assert request.environment == datasets_pb2.ENVIRONMENT_STAGING
        assert request.label_schema.task == datasets_pb2.LABEL_TASK_CLASSIFICATION
        assert list(request.label_schema.classes) == ["cat", "dog", "bird"]

    def test_classes_file_gives_one_class_per_line(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        classes = tmp_path / "classes.txt"
        classes.write_text("0\n1\n\n2\n")
        assert dataset_yard(*CREATE, "--classes-file", str(classes)).exit_code == 0
        assert list(dataset_svc.requests("CreateDataset")[0].label_schema.classes) == ["0", "1", "2"]

    def test_prints_the_id_schema_and_environment(self, dataset_yard: Yard) -> None:
        result = dataset_yard(*CREATE, "--classes", "cat,dog")
        assert result.stdout.strip() == "ds-1  pets  module vision  env dev  classification [cat, dog]"

    def test_an_unknown_environment_is_a_usage_error(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        result = dataset_yard(
            "datasets", "create", "pets", "--module", "m", "--env", "prod", "--task", "none"
        )
        assert result.exit_code == 2
        assert dataset_svc.calls == []


class TestList:
    def test_filters_are_sent_and_every_dataset_shown(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        result = dataset_yard(
            "datasets", "list", "--module", "vision", "--env", "production", "--org", "acme"
        )
        assert result.exit_code == 0, result.output
        (request,) = dataset_svc.requests("ListDatasets")
        assert (request.ai_module, request.org_id) == ("vision", "acme")
        assert request.environment == datasets_pb2.ENVIRONMENT_PRODUCTION
        assert "ds-1" in result.stdout
        assert "ds-2" in result.stdout

    def test_without_env_every_environment_is_asked_for(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        assert dataset_yard("datasets", "list").exit_code == 0
        assert dataset_svc.requests("ListDatasets")[0].environment == datasets_pb2.ENVIRONMENT_UNSPECIFIED


class TestShow:
    def test_shows_counts_and_the_latest_version(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.dataset = dataset(latest_version=2)
        result = dataset_yard("datasets", "show", "ds-1")
        assert result.exit_code == 0, result.output
        assert "10 samples (4.1 kB): 2 unlabeled · 3 labeled · 4 verified · 1 rejected" in result.stdout
        assert [(r.dataset_id, r.version) for r in dataset_svc.requests("GetVersion")] == [("ds-1", 2)]
        assert "dataset://ds-1/2" in result.stdout

    def test_before_any_version_none_is_asked_for(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        result = dataset_yard("datasets", "show", "ds-1")
        assert "none published" in result.stdout
        assert dataset_svc.requests("GetVersion") == []

    def test_samples_lists_those_in_the_state(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.samples = [sample("s-1"), sample("s-2", state=datasets_pb2.SAMPLE_STATE_VERIFIED)]
        result = dataset_yard("datasets", "show", "ds-1", "--samples", "labeled", "--limit", "5")
        (request,) = dataset_svc.requests("ListSamples")
        assert (list(request.states), request.page_size) == ([datasets_pb2.SAMPLE_STATE_LABELED], 5)
        assert "s-1.png" in result.stdout
        assert "s-2.png" not in result.stdout

    def test_json_holds_the_dataset_version_and_samples(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.dataset = dataset(latest_version=2)
        dataset_svc.samples = [sample("s-1")]
        result = dataset_yard("--json", "datasets", "show", "ds-1", "--samples", "labeled")
        document = json.loads(result.stdout)
        assert document["dataset"]["counts"]["verified"] == "4"
        assert document["latest_version"]["uri"] == "dataset://ds-1/2"
        assert [s["sample_id"] for s in document["samples"]] == ["s-1"]

    def test_json_says_when_there_is_no_version(self, dataset_yard: Yard) -> None:
        document = json.loads(dataset_yard("datasets", "show", "ds-1", "--json").stdout)
        assert (document["latest_version"], document["samples"]) == (None, [])


class TestPublish:
    def test_sends_the_split_and_prints_the_version_and_readiness(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        args = (
            "--seed",
            "7",
            "--train",
            "0.7",
            "--val",
            "0.2",
            "--family",
            "image_classifier",
            "--request-id",
            "p-1",
        )
        result = dataset_yard("datasets", "publish", "ds-1", *args)
        assert result.exit_code == 0, result.output
        (request,) = dataset_svc.requests("PublishVersion")
        assert (request.dataset_id, request.seed, request.family, request.request_id) == (
            "ds-1", 7, "image_classifier", "p-1"
        )  # fmt: skip
        assert (request.train_fraction, request.val_fraction) == (0.7, 0.2)
        for shown in ("dataset://ds-1/2", "cd" * 32, "train 34 · val 4 · test 5", "✓", "label_agreement"):
            assert shown in result.stdout
        assert "ds-1 version 2 is ready" in result.stdout

    def test_fractions_over_one_are_refused_before_any_call(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        result = dataset_yard("datasets", "publish", "ds-1", "--train", "0.9", "--val", "0.2")
        assert result.exit_code == 2
        assert dataset_svc.calls == []


class TestReadiness:
    def test_ready_exits_0(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        result = dataset_yard("datasets", "readiness", "ds-1", "--version", "2")
        assert result.exit_code == 0, result.output
        assert [(r.dataset_id, r.version) for r in dataset_svc.requests("GetReadiness")] == [("ds-1", 2)]

    def test_not_ready_exits_3_and_says_which_check_failed(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.readiness = readiness(ready=False)
        result = dataset_yard("datasets", "readiness", "ds-1")
        assert result.exit_code == 3
        assert ["✗", "samples_per_class"] in [row[:2] for row in table_rows(result.stdout)]
        assert "label and review more dogs" in result.stdout
        assert "ds-1 the working set is NOT ready" in result.stdout

    def test_not_ready_exits_3_with_json_too(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        dataset_svc.readiness = readiness(ready=False)
        result = dataset_yard("datasets", "readiness", "ds-1", "--json")
        assert result.exit_code == 3
        document = json.loads(result.stdout)
        assert document["ready"] is False
        assert [c["passed"] for c in document["checks"]] == [True, False]


class TestConnecting:
    def test_the_token_travels_to_dataset_svc(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        assert dataset_yard("datasets", "list").exit_code == 0
        assert dataset_svc.calls[0].metadata["authorization"] == f"Bearer {TOKEN}"

    def test_a_dev_secret_mints_the_token_as_for_job_svc(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        env = {
            "MODELYARD_TOKEN": None,
            "MODELYARD_TOKEN_SIGNING_KEY": TEST_ISSUER.private_text(),
            "MODELYARD_SUBJECT": "ada",
        }
        assert dataset_yard("--org", "acme", "datasets", "list", env=env).exit_code == 0
        token = dataset_svc.calls[0].metadata["authorization"].removeprefix("Bearer ")
        assert (verifier_for().verify(token).subject, verifier_for().verify(token).org_id) == ("ada", "acme")

    def test_the_option_names_another_target(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        result = dataset_yard("--dataset-target", dataset_svc.target, "datasets", "list",
                              env={"MODELYARD_DATASET_SVC_TARGET": "127.0.0.1:1"})  # fmt: skip
        assert result.exit_code == 0, result.output

    def test_an_unreachable_dataset_svc_names_its_target_and_env(self, dataset_yard: Yard) -> None:
        result = dataset_yard("--dataset-target", "127.0.0.1:1", "datasets", "list")
        assert result.exit_code == 2
        assert "cannot reach dataset-svc at 127.0.0.1:1" in result.stderr
        assert "--dataset-target or MODELYARD_DATASET_SVC_TARGET" in result.stderr

    def test_a_refusal_is_printed_with_its_status(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc
    ) -> None:
        dataset_svc.refusals["GetDataset"] = status_for(NotFound("dataset ds-9 not found"))
        result = dataset_yard("datasets", "show", "ds-9")
        assert result.exit_code == 2
        assert result.stderr.splitlines() == ["error: NOT_FOUND: dataset ds-9 not found"]
