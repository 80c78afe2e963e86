"""yard's job commands end to end against the in-process fake job-svc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from yard_fakes import FakeJobSvc, job
from yard_runner import Yard

from modelyard.v1 import jobs_pb2

SUBMIT = ("jobs", "submit", "--name", "digits-cnn", "--module", "digits", "--family", "image_classifier")
DATASET = ("--dataset", "file:///data/digits.npz")


class TestSubmit:
    def test_params_are_sent_as_typed_hyperparameters(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        params = ("--param", "lr=0.01", "-p", "epochs=3", "-p", "optimizer=adam", "-p", "augment=true")
        result = yard(*SUBMIT, *DATASET, *params)
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("CreateJob")
        fields = request.hyperparameters.fields
        assert fields["lr"].number_value == 0.01
        assert fields["epochs"].number_value == 3
        assert fields["optimizer"].string_value == "adam"
        assert fields["augment"].bool_value is True
        assert (request.name, request.ai_module, request.family) == (
            "digits-cnn",
            "digits",
            "image_classifier",
        )
        assert request.dataset_uri == "file:///data/digits.npz"

    def test_estimate_asks_for_an_estimate_and_submits_nothing(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.estimate = jobs_pb2.JobEstimate(
            epochs=3,
            devices=[
                jobs_pb2.DeviceEstimate(
                    device="cpu",
                    runs=2,
                    samples_per_s=1500.0,
                    epoch_s=20.0,
                    duration_s=75.0,
                    cost=0.5,
                    price_per_device_hour=24.0,
                    scaled_to_dataset=True,
                )
            ],
            explanation="from the last 2 completed run(s) of digits",
        )
        result = yard(*SUBMIT, *DATASET, "-p", "epochs=3", "--estimate")
        assert result.exit_code == 0, result.output
        assert [c.method for c in job_svc.calls] == ["EstimateJob"]
        assert job_svc.requests("EstimateJob")[0].hyperparameters.fields["epochs"].number_value == 3
        assert "1m 15s" in result.stdout
        assert "0.50 (24/h)" in result.stdout
        assert "from the last 2 completed run(s)" in result.stderr

    def test_estimate_without_past_runs_says_why(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.estimate = jobs_pb2.JobEstimate(epochs=3, explanation="no completed training run yet")
        result = yard(*SUBMIT, *DATASET, "--estimate")
        assert result.exit_code == 0, result.output
        assert "no completed training run yet" in result.stderr

    def test_params_file_is_read_and_params_override_it(
        self, yard: Yard, job_svc: FakeJobSvc, tmp_path: Path
    ) -> None:
        params_file = tmp_path / "params.json"
        params_file.write_text(json.dumps({"lr": 0.1, "batch_size": 64, "layers": [32, 16]}))
        result = yard(*SUBMIT, *DATASET, "--params-file", str(params_file), "--param", "lr=0.001")
        assert result.exit_code == 0, result.output
        sent = json_format.MessageToDict(job_svc.requests("CreateJob")[0].hyperparameters)
        assert sent == {"lr": 0.001, "batch_size": 64, "layers": [32, 16]}

    def test_priority_org_and_request_id_are_sent_when_given(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard(*SUBMIT, *DATASET, "--priority", "80", "--org", "globex", "--request-id", "req-1")
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("CreateJob")
        assert (request.priority, request.org_id, request.request_id) == (80, "globex", "req-1")

    def test_a_base_version_and_description_are_sent_for_fine_tuning(
        self, yard: Yard, job_svc: FakeJobSvc
    ) -> None:
        result = yard(*SUBMIT, *DATASET, "--base-version", "mv-7", "--description", "more scans")
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("CreateJob")
        assert (request.base_version_id, request.description) == ("mv-7", "more scans")

    def test_priority_is_left_to_the_server_when_not_given(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        assert yard(*SUBMIT, *DATASET).exit_code == 0
        assert not job_svc.requests("CreateJob")[0].HasField("priority")

    def test_prints_the_new_jobs_id_and_state(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job = job("job-42", queue_position=3)
        result = yard(*SUBMIT, *DATASET)
        assert result.stdout.strip() == "job-42  queued  priority 50  queue position 3  version 2"

    def test_json_prints_the_created_job(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job = job("job-42")
        document = json.loads(yard("--json", *SUBMIT, *DATASET).stdout)
        assert (document["job_id"], document["state"], document["name"]) == (
            "job-42",
            "JOB_STATE_QUEUED",
            "digits-cnn",
        )

    def test_a_param_without_value_is_refused_before_any_call(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard(*SUBMIT, *DATASET, "--param", "lr")
        assert result.exit_code == 2
        assert "expected key=value" in result.stderr
        assert job_svc.calls == []

    def test_watch_follows_the_new_job_until_it_completes(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job = job("job-1")
        result = yard(*SUBMIT, *DATASET, "--watch")
        assert result.exit_code == 0, result.output
        assert [r.job_id for r in job_svc.requests("WatchJob")] == ["job-1"]
        assert "job-1 completed after 2/2 epochs" in result.stdout


class TestList:
    def test_filters_are_sent(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard(
            "jobs", "list", "--state", "queued", "--state", "running", "--org", "acme", "--module", "digits"
        )
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("ListJobs")
        assert list(request.states) == [jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_RUNNING]
        assert (request.org_id, request.ai_module, request.page_size) == ("acme", "digits", 50)

    def test_all_follows_every_page(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job_pages = [[job("job-1"), job("job-2")], [job("job-3")]]
        result = yard("jobs", "list", "--all")
        assert result.exit_code == 0, result.output
        assert [r.page_token for r in job_svc.requests("ListJobs")] == ["", "1"]
        assert all(f"job-{n}" in result.stdout for n in (1, 2, 3))

    def test_limit_stops_paging_and_says_there_is_more(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job_pages = [[job("job-1"), job("job-2")], [job("job-3")]]
        result = yard("jobs", "list", "--limit", "2")
        assert [r.page_size for r in job_svc.requests("ListJobs")] == [2]
        assert "job-3" not in result.stdout
        assert "--all" in result.stderr

    def test_json_is_one_document_with_every_job(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job_pages = [[job("job-1")], [job("job-2")]]
        document = json.loads(yard("jobs", "list", "--all", "--json").stdout)
        assert [j["job_id"] for j in document["jobs"]] == ["job-1", "job-2"]

    def test_active_asks_for_every_unfinished_state_and_shows_where_training_stands(
        self, yard: Yard, job_svc: FakeJobSvc
    ) -> None:
        running = job(
            "job-7", state=jobs_pb2.JOB_STATE_RUNNING, epoch=2, epochs_total=3, step=5, steps_per_epoch=40,
            loss=0.5, samples_per_s=1200.0, elapsed_s=90.0, eta_s=30.0, trainer_id="t-1",
        )  # fmt: skip
        job_svc.job_pages = [[running]]
        result = yard("jobs", "active", "--org", "acme")
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("ListJobs")
        unfinished = ["PENDING", "QUEUED", "RUNNING", "PAUSED"]
        assert list(request.states) == [jobs_pb2.JobState.Value(f"JOB_STATE_{s}") for s in unfinished]
        assert request.org_id == "acme"
        assert "2/3 step 5/40" in result.stdout
        assert "1m 30s" in result.stdout  # elapsed

    def test_active_with_nothing_unfinished_says_so(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job_pages = [[]]
        result = yard("jobs", "active")
        assert result.exit_code == 0, result.output
        assert "no unfinished jobs" in result.stderr

    def test_an_unknown_state_is_a_usage_error(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "list", "--state", "sleeping")
        assert result.exit_code == 2
        assert "unknown job state 'sleeping'" in result.output
        assert job_svc.calls == []


class TestShow:
    def test_shows_details_epochs_and_events(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "show", "job-1")
        assert result.exit_code == 0, result.output
        assert {c.method for c in job_svc.calls} == {"GetJob", "GetMetricsHistory", "GetJobEvents"}
        assert all(c.request.job_id == "job-1" for c in job_svc.calls)
        assert "file:///data/digits.npz" in result.stdout
        assert "1,502.0 samples/s" in result.stdout  # epoch 2's row
        assert "JobCreated" in result.stdout

    def test_json_holds_the_job_its_epochs_and_events(self, yard: Yard) -> None:
        document = json.loads(yard("--json", "jobs", "show", "job-1").stdout)
        assert document["job"]["job_id"] == "job-1"
        assert [e["epoch"] for e in document["epochs"]] == [1, 2]
        assert [e["type"] for e in document["events"]] == ["JobCreated"]


class TestCommands:
    @pytest.mark.parametrize(
        ("command", "rpc"),
        [("cancel", "CancelJob"), ("pause", "PauseJob"), ("resume", "ResumeJob"), ("retry", "RetryJob")],
    )
    def test_sends_the_job_reason_and_expected_version(
        self, yard: Yard, job_svc: FakeJobSvc, command: str, rpc: str
    ) -> None:
        confirmed = ["--yes"] if command == "cancel" else []
        result = yard(
            "jobs", command, "job-1", "--reason", "wrong data", "--expected-version", "7", *confirmed
        )
        assert result.exit_code == 0, result.output
        assert [c.method for c in job_svc.calls] == [rpc]
        request = job_svc.calls[0].request
        assert (request.job_id, request.reason, request.expected_version) == ("job-1", "wrong data", 7)
        assert result.stdout.startswith("job-1  queued")

    def test_cancel_shows_the_job_and_asks_first(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "cancel", "job-1", "--reason", "wrong data", input="y\n")
        assert result.exit_code == 0, result.output
        assert [c.method for c in job_svc.calls] == ["GetJob", "CancelJob"]
        assert "Cancel job job-1?" in result.output

    def test_cancel_answered_no_sends_nothing(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "cancel", "job-1", input="n\n")
        assert result.exit_code == 1
        assert [c.method for c in job_svc.calls] == ["GetJob"]
        assert "job job-1 not cancelled" in result.output

    def test_cancel_without_a_terminal_to_ask_sends_nothing(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "cancel", "job-1", input="")
        assert result.exit_code != 0
        assert "CancelJob" not in [c.method for c in job_svc.calls]

    def test_priority_sets_the_new_priority(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.job = job(priority=90)
        result = yard("jobs", "priority", "job-1", "90", "--json")
        assert result.exit_code == 0, result.output
        (request,) = job_svc.requests("SetPriority")
        assert (request.job_id, request.priority, request.expected_version) == ("job-1", 90, 0)
        assert json.loads(result.stdout)["priority"] == 90


class TestFleetViews:
    def test_queue_shows_positions_for_the_org(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.queue = [jobs_pb2.QueueEntry(position=1, job=job("job-9"))]
        result = yard("jobs", "queue", "--org", "acme")
        assert job_svc.requests("GetQueue")[0].org_id == "acme"
        assert "job-9" in result.stdout
        assert json.loads(yard("jobs", "queue", "--json").stdout)["entries"][0]["position"] == "1"

    def test_trainers_lists_the_fleet(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.trainers = [jobs_pb2.Trainer(trainer_id="trainer-a", alive=True, slots_total=2, slots_free=2)]
        result = yard("trainers")
        assert result.exit_code == 0, result.output
        assert "trainer-a" in result.stdout
        assert "2/2" in result.stdout
        document = json.loads(yard("trainers", "list", "--json").stdout)
        assert document["trainers"][0]["trainer_id"] == "trainer-a"
