"""Training jobs end to end: job-svc, trainer-svc and trainer workers as real processes, real PyTorch."""

from __future__ import annotations

import hashlib
import os
import signal
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest
from google.protobuf import struct_pb2

from modelyard.v1 import jobs_pb2
from modelyard_devstack.processes import eventually
from tests.integration.job_client import JobClient
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration

ACCURACY_BOUND = 0.85  # 10 classes: chance is 0.10; 3 epochs of the small CNN reach 0.95+ on CPU
RUNNING, PAUSED = jobs_pb2.JOB_STATE_RUNNING, jobs_pb2.JOB_STATE_PAUSED
COMPLETED, CANCELLED = jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_CANCELLED
# Enough steps per epoch (batch 16 → 90 steps) that a pause or a kill lands mid-run.
SLOW = {"epochs": 12, "batch_size": 16}


async def _all_queued(queued: Callable[[], Awaitable[list[str]]]) -> bool:
    return len(await queued()) == 4


def sha256_of(uri: str) -> str:
    return hashlib.sha256(Path(urlparse(uri).path).read_bytes()).hexdigest()


async def test_a_digits_job_trains_to_completion_with_real_accuracy(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    worker = await trainers.start("t-complete")
    job = await jobs.create(fresh_org, digits_uri, epochs=3)

    done = await jobs.wait_for(job.job_id, COMPLETED)

    assert done.last_epoch.val_accuracy > ACCURACY_BOUND
    assert done.epochs_done == 3
    assert sha256_of(done.artifact_uri) == done.artifact_sha256
    assert await jobs.epochs(job.job_id) == [(1, 1), (1, 2), (1, 3)]
    types = await jobs.event_types(job.job_id)
    assert types[:3] == ["JobCreated", "JobQueued", "JobDispatched"]
    # job-svc's last word; registry-svc's ModelVersionRegistered about the job may follow it
    assert [t for t in types if t.startswith("Job")][-1] == "JobCompleted"
    assert "TrainingStarted" in types
    assert "JobStarted" in types
    # Before its first step the run said what it was doing, in order; finished, it has no phase.
    first_start = types.index("TrainingStarted")
    assert [t for t in types[:first_start] if t.startswith("Training")] == ["TrainingPhaseChanged"] * 3
    assert (done.HasField("phase"), done.HasField("phase_message")) == (False, False)
    # The facts a console shows: when it started and ended, how long it ran, where it stood.
    started, ended = done.started_at.ToDatetime(), done.completed_at.ToDatetime()
    assert done.created_at.ToDatetime() <= started < ended
    assert done.elapsed_s == (ended - started).total_seconds()
    assert (done.epoch, done.step, done.steps_per_epoch) == (3, done.steps_per_epoch, done.steps_per_epoch)
    assert (done.steps_per_epoch > 0, done.loss > 0, done.samples_per_s > 0) == (True, True, True)
    assert done.device == "cpu"
    listed = await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))
    assert [(j.job_id, j.last_epoch.epoch) for j in listed.jobs] == [(job.job_id, 3)]
    # The next run of the module is estimated from this one: twice the epochs, on the same device.
    values = struct_pb2.Struct()
    values.update({"epochs": 6})
    estimate = await jobs.queries.EstimateJob(
        jobs_pb2.CreateJobRequest(
            org_id=fresh_org,
            ai_module="digit-reader",
            family="image_classifier",
            dataset_uri=digits_uri,
            hyperparameters=values,
        )
    )
    (cpu,) = estimate.devices
    assert (estimate.epochs, cpu.device, cpu.runs, cpu.scaled_to_dataset) == (6, "cpu", 1, False)
    # Its time outside epochs, plus 6 of its median epochs (the run's own figures, so no timing guess).
    history = await jobs.queries.GetMetricsHistory(jobs_pb2.JobRef(job_id=job.job_id))
    durations = [e.duration_s for e in history.epochs]
    outside = max(done.elapsed_s - sum(durations), 0.0)
    assert cpu.duration_s == pytest.approx(outside + 6 * statistics.median(durations), rel=1e-6)
    assert "from the last 1 completed run(s) of digit-reader" in estimate.explanation
    assert listed.jobs[0].last_epoch == done.last_epoch
    await _its_logs_say_what_the_run_did(jobs, job.job_id)
    # It trained and reported without database credentials or a signing key (trainer-svc appended).
    assert not {"DATABASE_URL", "MODELYARD_EVENT_SIGNING_KEY"} & psutil.Process(worker.pid).environ().keys()


async def _its_logs_say_what_the_run_did(jobs: JobClient, job_id: str) -> None:
    """The trainer's own lines, paged (two at a time here) and followed to the end."""
    lines: list[jobs_pb2.JobLogLine] = []
    request = jobs_pb2.JobLogsRequest(job_id=job_id, page_size=2)
    while True:
        page = await jobs.queries.GetJobLogs(request)
        lines += page.lines
        if not page.more:
            break
        request.after_cursor = page.next_cursor
    messages = [line.message for line in lines]
    assert messages[0].startswith(f"training of job {job_id}, attempt 1, on trainer t-complete")
    assert any(m.startswith("loaded ") for m in messages)
    assert [m.split(":")[0] for m in messages if m.startswith("epoch ")] == [
        "epoch 1/3",
        "epoch 2/3",
        "epoch 3/3",
    ]
    assert messages[-1].startswith("artifact written: ")
    assert {(line.attempt, line.trainer_id, line.level) for line in lines} == {(1, "t-complete", "INFO")}
    assert [line.cursor for line in lines] == sorted({line.cursor for line in lines})
    # Followed from the third line: the rest, then the end (the job has finished).
    followed = [
        page
        async for page in jobs.queries.FollowJobLogs(
            jobs_pb2.JobLogsRequest(job_id=job_id, after_cursor=lines[1].cursor)
        )
    ]
    assert [line.message for page in followed for line in page.lines] == messages[2:]
    assert followed[-1].job_finished
    assert not followed[-1].lines


async def test_a_paused_job_resumes_from_its_checkpoint_without_repeating_epochs(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-pause")
    job = await jobs.create(fresh_org, digits_uri, **SLOW)
    await jobs.wait_until(job.job_id, lambda j: j.epochs_done >= 2, "two epochs done")

    await jobs.jobs.PauseJob(jobs_pb2.JobCommand(job_id=job.job_id, reason="make room"))
    paused = await jobs.wait_for(job.job_id, PAUSED)
    epochs_before = await jobs.epochs(job.job_id)
    await jobs.jobs.ResumeJob(jobs_pb2.JobCommand(job_id=job.job_id, reason="room again"))
    done = await jobs.wait_for(job.job_id, COMPLETED)

    assert 2 <= paused.epochs_done < 12
    assert await jobs.epochs(job.job_id) == [(1, n) for n in range(1, 13)]
    assert epochs_before == [(1, n) for n in range(1, len(epochs_before) + 1)]
    types = await jobs.event_types(job.job_id)
    assert types.count("JobDispatched") == 2
    assert types.count("TrainingStarted") == 2
    assert done.attempt == 1


async def test_a_running_job_is_cancelled_within_a_step(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-cancel")
    job = await jobs.create(fresh_org, digits_uri, **SLOW)
    await jobs.wait_until(
        job.job_id, lambda j: j.state == RUNNING and j.epochs_done >= 1, "training under way"
    )

    ref = jobs_pb2.JobRef(job_id=job.job_id)
    first, second = await jobs.jobs.GetJob(ref), await jobs.jobs.GetJob(ref)
    assert 0 < first.elapsed_s < second.elapsed_s  # while it runs, elapsed runs to the time of the read
    assert (first.HasField("completed_at"), first.step >= 1, first.HasField("loss")) == (False, True, True)
    assert first.phase == "training"
    assert first.phase_message.startswith("training on cpu from epoch 1 of ")

    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id, reason="wrong dataset"))
    cancelled = await jobs.wait_for(job.job_id, CANCELLED)

    assert cancelled.epochs_done < 12
    assert (cancelled.HasField("started_at"), cancelled.HasField("completed_at")) == (True, True)
    later = await jobs.jobs.GetJob(ref)
    assert later.elapsed_s == cancelled.elapsed_s  # ended: elapsed stops at completed_at
    types = await jobs.event_types(job.job_id)
    assert types[-2:] == ["TrainingCancelled", "JobCancelled"] or types[-1] == "JobCancelled"
    assert "JobCancelRequested" in types


async def test_a_killed_trainers_job_is_resumed_by_another_and_no_epoch_counts_twice(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-a")
    await trainers.start("t-b")
    job = await jobs.create(fresh_org, digits_uri, **SLOW)
    running = await jobs.wait_until(job.job_id, lambda j: j.epochs_done >= 2, "two epochs done")
    victim = running.trainer_id

    os.kill(trainers.started[victim].pid, signal.SIGKILL)
    done = await jobs.wait_for(job.job_id, COMPLETED, timeout_s=180)

    assert done.trainer_id != victim
    assert await jobs.epochs(job.job_id) == [(1, n) for n in range(1, 13)]
    types = await jobs.event_types(job.job_id)
    assert "JobLeaseExpired" in types
    assert types.count("JobDispatched") == 2


async def test_a_job_whose_trainers_keep_dying_fails_naming_them_instead_of_requeueing_forever(
    jobs: JobClient, trainers: Trainers, fresh_org: str, digits_uri: str
) -> None:
    # What an OOM kill looks like from job-svc: the worker is gone without a word (default cap: 3).
    for trainer_id in ("t-oom-1", "t-oom-2", "t-oom-3"):
        await trainers.start(trainer_id)
    job = await jobs.create(fresh_org, digits_uri, **SLOW)
    killed: list[str] = []
    for _ in range(3):
        running = await jobs.wait_until(
            job.job_id,
            lambda j: j.state == RUNNING and j.trainer_id and j.trainer_id not in killed,
            "a live trainer holding the job",
        )
        os.kill(trainers.started[running.trainer_id].pid, signal.SIGKILL)
        killed.append(running.trainer_id)

    failed = await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_FAILED, timeout_s=60)

    assert failed.failure_reason.startswith("lost 3 dispatches to trainers that stopped heartbeating")
    assert all(trainer_id in failed.failure_reason for trainer_id in killed)
    types = await jobs.event_types(job.job_id)
    assert (types.count("JobLeaseExpired"), types.count("JobDispatched"), types[-1]) == (3, 3, "JobFailed")


async def test_queued_jobs_are_dispatched_by_priority_then_fair_share_then_age(
    jobs: JobClient, trainers: Trainers, digits_uri: str
) -> None:
    acme, globex = "acme-" + os.urandom(3).hex(), "globex-" + os.urandom(3).hex()
    a1 = await jobs.create(acme, digits_uri, epochs=1)
    a2 = await jobs.create(acme, digits_uri, epochs=1)
    g1 = await jobs.create(globex, digits_uri, epochs=1)
    urgent = await jobs.create(acme, digits_uri, priority=90, epochs=1)
    mine = {a1.job_id: "a1", a2.job_id: "a2", g1.job_id: "g1", urgent.job_id: "urgent"}
    documented = ["urgent", "g1", "a1", "a2"]

    async def queued_in_order() -> list[str]:
        queue = await jobs.queries.GetQueue(jobs_pb2.GetQueueRequest())
        return [mine[e.job.job_id] for e in queue.entries if e.job.job_id in mine]

    await eventually(lambda: _all_queued(queued_in_order), 30, "the four jobs in the queue view")
    assert await queued_in_order() == documented

    await trainers.start("t-order", slots=2)
    for job_id in mine:
        await jobs.wait_for(job_id, COMPLETED)
    dispatched_at = {}
    for job_id, name in mine.items():
        events = (await jobs.queries.GetJobEvents(jobs_pb2.JobRef(job_id=job_id))).events
        dispatched_at[name] = next(e.position for e in events if e.type == "JobDispatched")
    assert sorted(dispatched_at, key=dispatched_at.__getitem__) == documented
