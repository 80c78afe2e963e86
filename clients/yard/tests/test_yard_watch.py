"""`yard jobs watch` against a fake WatchJob stream: lines, final metrics and exit codes."""

from __future__ import annotations

import json

from yard_fakes import FakeJobSvc, completed_story, failed_story
from yard_runner import Yard

from modelyard.v1 import jobs_pb2


class TestWatch:
    def test_exits_0_when_the_job_completes_and_prints_its_artifact(
        self, yard: Yard, job_svc: FakeJobSvc
    ) -> None:
        result = yard("jobs", "watch", "job-1")
        assert result.exit_code == 0, result.output
        assert job_svc.requests("WatchJob")[0].job_id == "job-1"
        lines = result.stdout.splitlines()
        assert "job-1 is queued (queue position 1)" in lines
        assert "job-1 is running (attempt 1, trainer trainer-a)" in lines
        assert "epoch 1/2  train loss 1.0000  val loss 0.9000  val acc 81.0%  1,501.0 samples/s" in lines
        assert any(line.startswith("epoch 2/2  train loss 0.5000") for line in lines)
        assert "job-1 completed after 2/2 epochs (attempt 1)" in lines
        assert "artifact file:///artifacts/job-1/model.pt" in lines
        assert f"sha256   {'ab' * 32}" in lines

    def test_exits_1_when_the_job_fails_and_prints_the_reason(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.watch_updates = failed_story()
        result = yard("jobs", "watch", "job-1")
        assert result.exit_code == 1
        assert "failure  CUDA out of memory" in result.stdout.splitlines()
        assert "artifact" not in result.stdout

    def test_exits_1_when_the_job_is_cancelled(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        story = completed_story()
        story[-1].job.state = story[-1].state_changed = jobs_pb2.JOB_STATE_CANCELLED
        job_svc.watch_updates = story
        assert yard("jobs", "watch", "job-1").exit_code == 1

    def test_json_prints_one_update_per_line(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        result = yard("jobs", "watch", "job-1", "--json")
        assert result.exit_code == 0, result.output
        updates = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(updates) == len(job_svc.watch_updates)
        assert updates[2]["epoch_completed"]["epoch"] == 1
        assert updates[-1]["job"]["state"] == "JOB_STATE_COMPLETED"

    def test_a_stream_that_ends_before_the_job_is_an_error(self, yard: Yard, job_svc: FakeJobSvc) -> None:
        job_svc.watch_updates = completed_story()[:3]
        result = yard("jobs", "watch", "job-1")
        assert result.exit_code == 2
        assert "ended before the job finished" in result.stderr
