"""`AuditService/GetUsage` on the running services: a created job and uploaded dataset bytes show next
to the plan's limits; who may ask (an org_admin its own organization only); bad organization ids; a
limit reached is RESOURCE_EXHAUSTED naming it, and the usage shows the limit that refused it."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import struct_pb2

from modelyard.v1 import audit_pb2, audit_pb2_grpc, jobs_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel
from tests.integration.conftest import TINY_DATASET_LIMIT
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration
GB = 10**9


async def _usage(services: Platform, token: str, org_id: str) -> audit_pb2.Usage:
    async with channel(services.job_target, token) as ch:
        found: audit_pb2.Usage = await audit_pb2_grpc.AuditServiceStub(ch).GetUsage(
            audit_pb2.UsageRequest(org_id=org_id)
        )
        return found


async def _refusal(services: Platform, token: str, org_id: str) -> tuple[str, str]:
    try:
        await _usage(services, token, org_id)
    except grpc.aio.AioRpcError as error:
        return error.code().name, error.details() or ""
    return "OK", ""


def _job_request(org_id: str) -> jobs_pb2.CreateJobRequest:
    values = struct_pb2.Struct()
    values.update({"epochs": 1})
    return jobs_pb2.CreateJobRequest(
        name="usage", ai_module="digit-reader", family="image_classifier",
        dataset_uri="file:///data/digits.npz", hyperparameters=values, org_id=org_id,
    )  # fmt: skip


async def test_a_created_job_and_uploaded_bytes_show_next_to_the_plans_limits(
    services: Platform, jobs: JobClient, datasets: DatasetClient, fresh_org: str
) -> None:
    job = await jobs.jobs.CreateJob(_job_request(fresh_org))
    await jobs.jobs.CancelJob(jobs_pb2.JobCommand(job_id=job.job_id))  # cancelled: still counted
    dataset = await datasets.create(fresh_org, ["0", "1"])
    files = digit_files(2, [0, 1])
    await datasets.upload(dataset.dataset_id, [(name, data) for name, data, _ in files])
    stored = sum(len(data) for _, data, _ in files)
    auditor = services.token(("auditor",), subject="auditor-1")

    async def both_counted() -> bool:
        usage = await _usage(services, auditor, fresh_org)
        return usage.jobs_this_month == 1 and usage.dataset_bytes == stored

    # 120 s like the job waits: it timed out at 60 s once, late in a CI run on a loaded machine.
    await eventually(both_counted, 120, "the job and the upload in the usage view")
    usage = await _usage(services, auditor, fresh_org)
    assert (usage.org_id, usage.plan_key, usage.plan_name) == (fresh_org, "enterprise", "Enterprise")
    assert usage.month == datetime.now(UTC).strftime("%Y-%m")
    assert (usage.jobs_limit, usage.dataset_bytes_limit, usage.active_models_limit) == (10, 10 * GB, 5)
    assert list(usage.modules) == []  # nothing released in this organization
    # Its own org_admin reads the same, its organization filled in when the request names none.
    own = await _usage(services, services.token(("org_admin",), org_id=fresh_org, subject="oa-1"), "")
    assert own == usage


async def test_who_may_read_usage_and_bad_organization_ids(services: Platform, fresh_org: str) -> None:
    other_admin = services.token(("org_admin",), org_id="org-someone-else", subject="oa-2")
    refused = {
        "another organization's org_admin": await _refusal(services, other_admin, fresh_org),
        "a Professional org_admin": await _refusal(
            services, services.token(("org_admin",), org_id="smallco", subject="oa-3"), "smallco"
        ),
        "an edge": await _refusal(
            services, services.token(("edge",), org_id=fresh_org, subject="edge-1"), fresh_org
        ),
        "a trainer": await _refusal(services, services.token(("trainer",), subject="t-1"), fresh_org),
    }
    assert {who: code for who, (code, _) in refused.items()} == dict.fromkeys(refused, "PERMISSION_DENIED")
    assert "Enterprise" in refused["a Professional org_admin"][1]

    admin = services.token(("super_admin",), subject="root")
    code, details = await _refusal(services, admin, "")
    assert code == "INVALID_ARGUMENT"
    assert "org_id" in details
    code, details = await _refusal(services, admin, "o" * 10_000)
    assert code == "INVALID_ARGUMENT"
    assert "at most" in details


async def test_a_reached_limit_is_resource_exhausted_naming_it_and_the_usage_shows_it(
    services: Platform, jobs: JobClient
) -> None:
    # smallco is on Professional here: no training jobs at all, and no dataset limit set by the plan
    # itself; tinyco is Professional with the platform's tiny dataset limit.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.jobs.CreateJob(_job_request("smallco"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Professional plan includes no training jobs (limit 0 a month)" in (caught.value.details() or "")

    auditor = services.token(("auditor",), subject="auditor-1")
    smallco = await _usage(services, auditor, "smallco")
    assert smallco.HasField("jobs_limit")  # a limit of 0 is a limit, not "unlimited"
    assert (smallco.plan_name, smallco.jobs_this_month, smallco.jobs_limit) == ("Professional", 0, 0)
    assert not smallco.HasField("active_models_limit")  # Professional sets none: unlimited
    tinyco = await _usage(services, auditor, "tinyco")
    assert tinyco.dataset_bytes_limit == TINY_DATASET_LIMIT
