"""`yard jobs logs` against fake GetJobLogs / FollowJobLogs: every page, followed lines, JSON, refusals."""

from __future__ import annotations

import json

from yard_fakes import FakeJobSvc, log_page
from yard_runner import Yard

from modelyard.v1 import jobs_pb2
from modelyard_events.domain_errors import PermissionDenied
from modelyard_grpc import status_for


def test_prints_every_page_of_lines_in_order(yard: Yard, job_svc: FakeJobSvc) -> None:
    job_svc.log_pages = [
        log_page("loaded 1437 training samples", "epoch 1/2: train_loss 0.5", more=True),
        log_page("epoch 2/2: train_loss 0.2", first_cursor=200),
    ]

    result = yard("jobs", "logs", "job-1")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-01-01 00:00:00 INFO    #1 loaded 1437 training samples",
        "2026-01-01 00:00:01 INFO    #1 epoch 1/2: train_loss 0.5",
        "2026-01-01 00:00:00 INFO    #1 epoch 2/2: train_loss 0.2",
    ]
    requests = job_svc.requests("GetJobLogs")
    assert [(r.job_id, r.after_cursor) for r in requests] == [("job-1", 0), ("job-1", 64)]


def test_follow_streams_until_the_server_ends_and_json_is_one_line_each(
    yard: Yard, job_svc: FakeJobSvc
) -> None:
    job_svc.followed_logs = [
        log_page("epoch 1/2: train_loss 0.5"),
        log_page("epoch 2/2: train_loss 0.2", first_cursor=100),
        jobs_pb2.JobLogsResponse(next_cursor=100, job_finished=True),
    ]

    result = yard("jobs", "logs", "job-1", "-f", "--attempt", "1", "--json")

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["message"] for line in lines] == ["epoch 1/2: train_loss 0.5", "epoch 2/2: train_loss 0.2"]
    assert job_svc.requests("FollowJobLogs")[0].attempt == 1
    assert job_svc.requests("GetJobLogs") == []


def test_a_line_cannot_drive_the_terminal(yard: Yard, job_svc: FakeJobSvc) -> None:
    job_svc.log_pages = [log_page("evil \x1b]52;c;aGk=\x07line\x1b[2J")]

    result = yard("jobs", "logs", "job-1")

    assert "\x1b" not in result.stdout
    assert "evil line" in result.stdout


def test_no_lines_yet_says_so_on_stderr(yard: Yard, job_svc: FakeJobSvc) -> None:
    result = yard("jobs", "logs", "job-1")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no lines logged for job-1 yet" in result.stderr


def test_a_refusal_is_printed_with_its_status(yard: Yard, job_svc: FakeJobSvc) -> None:
    job_svc.refusals["GetJobLogs"] = status_for(PermissionDenied("job-1 is not in your organization"))

    result = yard("jobs", "logs", "job-1")

    assert result.exit_code != 0
    assert "job-1 is not in your organization" in result.stderr
