"""Model versions for the rollout benchmark, made through the real pipeline.

What tests/integration/deploy_flow.py does, without pytest: a one-epoch digits job trained by a real
trainer worker and registered by registry-svc, evaluated by that worker on the held-out split (asked
for by "dev", who created the job), approved by a second super admin ("carol": four eyes); released
to production only just before its rollout, since an environment has one current release and
deploy-svc deploys nothing else there. Each version is trained with its own seed, so each has its
own artifact. deploy-svc learns of a release from the registry's events.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import struct_pb2

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc, registry_pb2, registry_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually

RELEASED = registry_pb2.MODEL_STATUS_RELEASED
TESTING = registry_pb2.MODEL_STATUS_TESTING
MODULE = "bench-edge-reader"
ENVIRONMENT = "production"


async def approved_version(
    running: Platform, org: str, dataset_uri: str, seed: int, epochs: int = 1
) -> registry_pb2.ModelVersion:
    """Train, register, evaluate and approve one version of MODULE; the approved version."""
    async with (
        running.channel(running.job_target, running.token(subject="dev")) as job_channel,
        running.channel(running.registry_target, running.token(subject="dev")) as dev_channel,
        running.channel(running.registry_target, running.token(subject="carol")) as carol_channel,
    ):
        jobs = jobs_pb2_grpc.JobServiceStub(job_channel)
        dev = registry_pb2_grpc.RegistryServiceStub(dev_channel)
        carol = registry_pb2_grpc.RegistryServiceStub(carol_channel)
        values = struct_pb2.Struct()
        values.update({"epochs": epochs, "seed": seed})
        job = await jobs.CreateJob(
            jobs_pb2.CreateJobRequest(
                name="deploy bench", ai_module=MODULE, family="image_classifier", dataset_uri=dataset_uri,
                hyperparameters=values, org_id=org,
            )
        )  # fmt: skip
        version_id = await _registered_from(dev, org, job.job_id)
        ref = registry_pb2.VersionCommand(version_id=version_id)
        await dev.EvaluateVersion(registry_pb2.EvaluateRequest(version_id=version_id))
        await _until(dev, version_id, lambda v: v.evaluation.finished or v.status != TESTING, "evaluated")
        approved: registry_pb2.ModelVersion = await carol.ApproveVersion(ref)
        return approved


async def release(running: Platform, version_id: str) -> None:
    """Release an approved version to production (as "carol"), replacing the current release there."""
    async with running.channel(running.registry_target, running.token(subject="carol")) as ch:
        done = await registry_pb2_grpc.RegistryServiceStub(ch).ReleaseVersion(
            registry_pb2.ReleaseRequest(
                version_id=version_id, environment=ENVIRONMENT, release_notes="deploy benchmark"
            )
        )
    if done.status != RELEASED:
        raise RuntimeError(
            f"version {version_id} is {registry_pb2.ModelStatus.Name(done.status)}, not released"
        )


async def _registered_from(stub: registry_pb2_grpc.RegistryServiceStub, org: str, job_id: str) -> str:
    found: list[str] = []

    async def registered() -> bool:
        reply = await stub.ListVersions(registry_pb2.ListVersionsRequest(org_id=org, page_size=100))
        found[:] = [v.version_id for v in reply.versions if v.training_job_id == job_id]
        return bool(found)

    await eventually(registered, 300, f"a version registered from job {job_id}")
    return found[0]


async def _until(
    stub: registry_pb2_grpc.RegistryServiceStub,
    version_id: str,
    check: Callable[[registry_pb2.ModelVersion], bool],
    what: str,
) -> None:
    async def reached() -> bool:
        try:
            version = await stub.GetVersion(registry_pb2.ModelVersionRef(version_id=version_id))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return check(version)

    await eventually(reached, 300, f"version {version_id} {what}")


def describe(version: registry_pb2.ModelVersion) -> dict[str, object]:
    """What the results say about a version: its number, artifact and evaluated accuracy."""
    return {
        "version_id": version.version_id,
        "semantic_version": version.semantic_version,
        "artifact_sha256": version.artifact_sha256,
        "artifact_size_bytes": version.artifact_size_bytes,
        "accuracy": round(version.accuracy, 4) if version.HasField("accuracy") else None,
    }
