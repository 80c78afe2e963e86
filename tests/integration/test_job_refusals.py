"""Bad input and illegal transitions get the documented gRPC status, and change nothing."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_status import rpc_status

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_grpc import channel
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration


def request(org_id: str, **hyperparameters: object) -> jobs_pb2.CreateJobRequest:
    values = struct_pb2.Struct()
    values.update(hyperparameters)
    return jobs_pb2.CreateJobRequest(
        name="refusals",
        ai_module="digit-reader",
        family="image_classifier",
        dataset_uri="file:///data/digits.npz",
        hyperparameters=values,
        org_id=org_id,
    )


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    from google.rpc import error_details_pb2

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "INVALID_ARGUMENT must carry field violations"
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ({"epochs": 0}, "hyperparameters.epochs"),
        ({"epochs": "three"}, "hyperparameters.epochs"),
        ({"lr": -0.1}, "hyperparameters.lr"),
        ({"learning_rate": 0.1}, "hyperparameters.learning_rate"),
        ({"batch_size": 1.5}, "hyperparameters.batch_size"),
        ({"batch_size": 65536}, "hyperparameters.batch_size"),  # within the schema, above the cap
    ],
)
async def test_bad_hyperparameters_are_invalid_arguments_naming_the_field(
    jobs: JobClient, fresh_org: str, hyperparameters: dict[str, object], field: str
) -> None:
    error = await refusal(jobs.jobs.CreateJob(request(fresh_org, **hyperparameters)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violated_fields(error)
    assert field in (error.details() or "")
    listed = await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))
    assert list(listed.jobs) == []


async def test_every_bad_field_is_reported_at_once(jobs: JobClient, fresh_org: str) -> None:
    bad = request(fresh_org, epochs=0)
    bad.name, bad.ai_module, bad.family = "", "Not A Slug", "image_classifier"

    error = await refusal(jobs.jobs.CreateJob(bad))

    assert {"name", "ai_module", "hyperparameters.epochs"} <= set(violated_fields(error))


async def test_an_unknown_job_is_not_found(jobs: JobClient) -> None:
    for call in (
        jobs.jobs.GetJob(jobs_pb2.JobRef(job_id="job-nope")),
        jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id="job-nope")),
    ):
        assert (await refusal(call)).code() == grpc.StatusCode.NOT_FOUND


async def test_illegal_transitions_are_failed_preconditions(jobs: JobClient, fresh_org: str) -> None:
    job = await jobs.jobs.CreateJob(request(fresh_org, epochs=1))
    ref = jobs_pb2.JobCommand(job_id=job.job_id, reason="test")
    # Queued (no trainer is running in this organization's jobs' way: paused at once below).
    for illegal in (jobs.jobs.ResumeJob(ref), jobs.jobs.RetryJob(ref)):
        error = await refusal(illegal)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert job.job_id in (error.details() or "")
    paused = await jobs.jobs.PauseJob(ref)
    assert paused.state == jobs_pb2.JOB_STATE_PAUSED
    for illegal in (jobs.jobs.PauseJob(ref), jobs.jobs.RetryJob(ref)):
        assert (await refusal(illegal)).code() == grpc.StatusCode.FAILED_PRECONDITION
    cancelled = await jobs.jobs.CancelJob(ref)
    assert cancelled.state == jobs_pb2.JOB_STATE_CANCELLED
    for illegal in (
        jobs.jobs.CancelJob(ref),
        jobs.jobs.PauseJob(ref),
        jobs.jobs.ResumeJob(ref),
        jobs.jobs.SetPriority(jobs_pb2.SetPriorityRequest(job_id=job.job_id, priority=80)),
    ):
        assert (await refusal(illegal)).code() == grpc.StatusCode.FAILED_PRECONDITION
    await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_CANCELLED)  # the views agree once they catch up


async def test_a_stale_expected_version_is_aborted(jobs: JobClient, fresh_org: str) -> None:
    job = await jobs.jobs.CreateJob(request(fresh_org, epochs=1))
    await jobs.jobs.SetPriority(jobs_pb2.SetPriorityRequest(job_id=job.job_id, priority=70))

    error = await refusal(
        jobs.jobs.PauseJob(jobs_pb2.JobCommand(job_id=job.job_id, expected_version=job.version))
    )

    assert error.code() == grpc.StatusCode.ABORTED
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id))


async def test_priority_out_of_range_is_an_invalid_argument(jobs: JobClient, fresh_org: str) -> None:
    job = await jobs.jobs.CreateJob(request(fresh_org, epochs=1))

    error = await refusal(jobs.jobs.SetPriority(jobs_pb2.SetPriorityRequest(job_id=job.job_id, priority=101)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["priority"]
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id))


async def test_the_plans_job_quota_is_resource_exhausted(jobs: JobClient, fresh_org: str) -> None:
    error = await refusal(jobs.jobs.CreateJob(request("smallco", epochs=1)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Professional" in (error.details() or "")

    for _ in range(10):
        job = await jobs.jobs.CreateJob(request(fresh_org, epochs=1))
        await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id))
    error = await refusal(jobs.jobs.CreateJob(request(fresh_org, epochs=1)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "10 training jobs a month" in (error.details() or "")


async def test_a_repeated_request_id_returns_the_same_job(jobs: JobClient, fresh_org: str) -> None:
    first_request = request(fresh_org, epochs=1)
    first_request.request_id = "submit-42"

    first = await jobs.jobs.CreateJob(first_request)
    again = await jobs.jobs.CreateJob(first_request)

    assert again.job_id == first.job_id
    listed = await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))
    assert [j.job_id for j in listed.jobs] in ([], [first.job_id])  # the views may lag a few ms
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=first.job_id))


async def test_a_heartbeat_claiming_absurd_slots_is_an_invalid_argument(services: Platform) -> None:
    trainer = services.token(("trainer",), subject="t-greedy")
    absurd = jobs_pb2.HeartbeatRequest(trainer_id="t-greedy", slots_total=1_000_000)
    async with channel(services.job_target, trainer) as ch:
        error = await refusal(jobs_pb2_grpc.TrainerServiceStub(ch).Heartbeat(absurd))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["slots_total"]
    assert "1 to 64 slots; got 1000000" in (error.details() or "")
