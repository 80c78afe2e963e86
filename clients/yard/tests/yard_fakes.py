"""An in-process job-svc for yard's tests: servicers that record every request and answer with canned
messages, and builders of those messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from typing_extensions import override

from modelyard.v1 import events_pb2, jobs_pb2, jobs_pb2_grpc

UPDATED_AT = Timestamp(seconds=1_767_225_600)  # 2026-01-01 00:00:00Z


def job(job_id: str = "job-1", **fields: Any) -> jobs_pb2.Job:
    """A job with plausible defaults; `fields` override them."""
    values: dict[str, Any] = {
        "job_id": job_id, "org_id": "acme", "name": "digits-cnn", "ai_module": "digits",
        "family": "image_classifier", "dataset_uri": "file:///data/digits.npz", "priority": 50,
        "state": jobs_pb2.JOB_STATE_QUEUED, "attempt": 1, "epochs_total": 2, "version": 2,
        "created_by": "ada", "updated_at": UPDATED_AT,
    }  # fmt: skip
    values.update(fields)
    return jobs_pb2.Job(**values)


def epoch(number: int, **fields: Any) -> jobs_pb2.EpochMetrics:
    """Metrics of one finished epoch."""
    values: dict[str, Any] = {
        "epoch": number, "attempt": 1, "train_loss": 1.0 / number, "val_loss": 0.9 / number,
        "val_accuracy": 0.8 + number / 100, "samples_per_s": 1500.0 + number, "duration_s": 4.0,
    }  # fmt: skip
    values.update(fields)
    return jobs_pb2.EpochMetrics(**values)


def finished_story(job_id: str, outcome: jobs_pb2.JobState, **final: Any) -> list[jobs_pb2.JobUpdate]:
    """What WatchJob streams for a job that runs two epochs: queued → running → epochs → `outcome`."""
    running = {"state": jobs_pb2.JOB_STATE_RUNNING, "trainer_id": "trainer-a"}
    one, two = epoch(1), epoch(2)
    progress = jobs_pb2.JobProgress(
        epoch=2, step=5, steps_total=10, loss=0.6, samples_per_s=1490.0, eta_s=7.0
    )
    return [
        jobs_pb2.JobUpdate(job=job(job_id, queue_position=1), state_changed=jobs_pb2.JOB_STATE_QUEUED),
        jobs_pb2.JobUpdate(
            job=job(job_id, **running, progress=0.0), state_changed=jobs_pb2.JOB_STATE_RUNNING
        ),
        jobs_pb2.JobUpdate(
            job=job(job_id, **running, progress=0.5, epochs_done=1, last_epoch=one), epoch_completed=one
        ),
        jobs_pb2.JobUpdate(job=job(job_id, **running, progress=0.75, epochs_done=1), progress=progress),
        jobs_pb2.JobUpdate(
            job=job(job_id, **running, progress=1.0, epochs_done=2, last_epoch=two), epoch_completed=two
        ),
        jobs_pb2.JobUpdate(
            job=job(job_id, state=outcome, progress=1.0, epochs_done=2, last_epoch=two, **final),
            state_changed=outcome,
        ),
    ]


def completed_story(job_id: str = "job-1") -> list[jobs_pb2.JobUpdate]:
    """A watched job that completes with an artifact."""
    artifact = {"artifact_uri": "file:///artifacts/job-1/model.pt", "artifact_sha256": "ab" * 32}
    return finished_story(job_id, jobs_pb2.JOB_STATE_COMPLETED, **artifact)


def failed_story(job_id: str = "job-1") -> list[jobs_pb2.JobUpdate]:
    """A watched job that fails after its epochs."""
    return finished_story(job_id, jobs_pb2.JOB_STATE_FAILED, failure_reason="CUDA out of memory")


def log_page(*messages: str, first_cursor: int = 32, more: bool = False) -> jobs_pb2.JobLogsResponse:
    """A page of INFO lines of attempt 1, one trainer-log position (32 cursors) apart."""
    lines = [
        jobs_pb2.JobLogLine(
            cursor=first_cursor + 32 * i,
            attempt=1,
            at=Timestamp(seconds=UPDATED_AT.seconds + i),
            level="INFO",
            logger="modelyard_trainer.training.engine",
            message=message,
            trainer_id="trainer-a",
        )
        for i, message in enumerate(messages)
    ]
    return jobs_pb2.JobLogsResponse(lines=lines, next_cursor=lines[-1].cursor if lines else 0, more=more)


def event(version: int, type_: str, subject: str = "ada") -> events_pb2.EventEnvelope:
    """A recorded event of job-1."""
    return events_pb2.EventEnvelope(
        stream_type="training_job", stream_id="job-1", stream_version=version, type=type_,
        occurred_at=UPDATED_AT, actor=events_pb2.Actor(subject=subject, roles=["super_admin"]),
    )  # fmt: skip


@dataclass(frozen=True)
class Call:
    """One request the fake received, with the call's metadata."""

    method: str
    request: Any  # the method's request message
    metadata: dict[str, str]


@dataclass
class FakeJobSvc:
    """The canned answers both servicers give, the statuses they refuse with, and every call made."""

    target: str = ""
    job: jobs_pb2.Job = field(default_factory=job)
    job_pages: list[list[jobs_pb2.Job]] = field(default_factory=lambda: [[job("job-1"), job("job-2")]])
    watch_updates: list[jobs_pb2.JobUpdate] = field(default_factory=completed_story)
    epochs: list[jobs_pb2.EpochMetrics] = field(default_factory=lambda: [epoch(1), epoch(2)])
    events: list[events_pb2.EventEnvelope] = field(default_factory=lambda: [event(1, "JobCreated")])
    queue: list[jobs_pb2.QueueEntry] = field(default_factory=list)
    trainers: list[jobs_pb2.Trainer] = field(default_factory=list)
    estimate: jobs_pb2.JobEstimate = field(default_factory=jobs_pb2.JobEstimate)
    log_pages: list[jobs_pb2.JobLogsResponse] = field(default_factory=list)  # GetJobLogs's, by page
    followed_logs: list[jobs_pb2.JobLogsResponse] = field(default_factory=list)  # what FollowJobLogs streams
    refusals: dict[str, grpc.Status] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def requests(self, method: str) -> list[Any]:
        """The requests `method` received, in order."""
        return [c.request for c in self.calls if c.method == method]

    def record(self, method: str, request: Message, context: grpc.ServicerContext) -> None:
        """Note the call; refuse it with the status set for `method`, if any."""
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        self.calls.append(Call(method, request, metadata))
        if method in self.refusals:
            context.abort_with_status(self.refusals[method])


class FakeJobService(jobs_pb2_grpc.JobServiceServicer):
    """JobService answering from a FakeJobSvc."""

    def __init__(self, fake: FakeJobSvc) -> None:
        self.fake = fake

    @override
    def CreateJob(self, request: jobs_pb2.CreateJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:
        self.fake.record("CreateJob", request, context)
        return self.fake.job

    @override
    def GetJob(self, request: jobs_pb2.JobRef, context: grpc.ServicerContext) -> jobs_pb2.Job:
        self.fake.record("GetJob", request, context)
        return self.fake.job

    @override
    def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: grpc.ServicerContext) -> Any:
        self.fake.record("ListJobs", request, context)
        page = int(request.page_token or 0)
        more = page + 1 < len(self.fake.job_pages)
        return jobs_pb2.ListJobsResponse(
            jobs=self.fake.job_pages[page], next_page_token=str(page + 1) if more else ""
        )

    @override
    def CancelJob(self, request: jobs_pb2.JobCommand, context: grpc.ServicerContext) -> jobs_pb2.Job:
        return self._command("CancelJob", request, context)

    @override
    def PauseJob(self, request: jobs_pb2.JobCommand, context: grpc.ServicerContext) -> jobs_pb2.Job:
        return self._command("PauseJob", request, context)

    @override
    def ResumeJob(self, request: jobs_pb2.JobCommand, context: grpc.ServicerContext) -> jobs_pb2.Job:
        return self._command("ResumeJob", request, context)

    @override
    def RetryJob(self, request: jobs_pb2.JobCommand, context: grpc.ServicerContext) -> jobs_pb2.Job:
        return self._command("RetryJob", request, context)

    @override
    def SetPriority(
        self, request: jobs_pb2.SetPriorityRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.Job:
        return self._command("SetPriority", request, context)

    @override
    def WatchJob(self, request: jobs_pb2.WatchJobRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        self.fake.record("WatchJob", request, context)
        yield from self.fake.watch_updates

    def _command(self, method: str, request: Message, context: grpc.ServicerContext) -> jobs_pb2.Job:
        self.fake.record(method, request, context)
        return self.fake.job


class FakeQueryService(jobs_pb2_grpc.QueryServiceServicer):
    """QueryService answering from a FakeJobSvc."""

    def __init__(self, fake: FakeJobSvc) -> None:
        self.fake = fake

    @override
    def GetQueue(self, request: jobs_pb2.GetQueueRequest, context: grpc.ServicerContext) -> Any:
        self.fake.record("GetQueue", request, context)
        return jobs_pb2.GetQueueResponse(entries=self.fake.queue)

    @override
    def EstimateJob(self, request: jobs_pb2.CreateJobRequest, context: grpc.ServicerContext) -> Any:
        self.fake.record("EstimateJob", request, context)
        return self.fake.estimate

    @override
    def GetMetricsHistory(self, request: jobs_pb2.JobRef, context: grpc.ServicerContext) -> Any:
        self.fake.record("GetMetricsHistory", request, context)
        return jobs_pb2.MetricsHistoryResponse(job_id=request.job_id, epochs=self.fake.epochs)

    @override
    def GetJobEvents(self, request: jobs_pb2.JobRef, context: grpc.ServicerContext) -> Any:
        self.fake.record("GetJobEvents", request, context)
        return jobs_pb2.JobEventsResponse(events=self.fake.events)

    @override
    def GetJobLogs(self, request: jobs_pb2.JobLogsRequest, context: grpc.ServicerContext) -> Any:
        self.fake.record("GetJobLogs", request, context)
        pages = self.fake.log_pages
        after = [page for page in pages if not page.lines or page.lines[0].cursor > request.after_cursor]
        return after[0] if after else jobs_pb2.JobLogsResponse(next_cursor=request.after_cursor)

    @override
    def FollowJobLogs(self, request: jobs_pb2.JobLogsRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        self.fake.record("FollowJobLogs", request, context)
        yield from self.fake.followed_logs

    @override
    def ListTrainers(self, request: jobs_pb2.ListTrainersRequest, context: grpc.ServicerContext) -> Any:
        self.fake.record("ListTrainers", request, context)
        return jobs_pb2.ListTrainersResponse(trainers=self.fake.trainers)
