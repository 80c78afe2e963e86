"""Steps the registry tests share: train a version, evaluate it, approve it as someone else."""

from __future__ import annotations

from google.protobuf import struct_pb2

from modelyard.v1 import jobs_pb2, registry_pb2
from modelyard_devstack.platform import Platform
from tests.integration.job_client import JobClient
from tests.integration.registry_client import APPROVED, TESTING, RegistryClient


async def train_version(
    jobs: JobClient,
    registry: RegistryClient,
    org: str,
    uri: str,
    module: str = "digit-reader",
    epochs: int = 1,
    **hyperparameters: object,
) -> registry_pb2.ModelVersion:
    """A one-epoch digits job of `module`, completed and registered (created by subject "dev")."""
    values = struct_pb2.Struct()
    values.update({"epochs": epochs, **hyperparameters})
    job = await jobs.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            name=f"{module} test", ai_module=module, family="image_classifier", dataset_uri=uri,
            hyperparameters=values, org_id=org,
        )
    )  # fmt: skip
    await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED)
    return await registry.registered_from(org, job.job_id)


async def evaluated(registry: RegistryClient, version_id: str) -> registry_pb2.ModelVersion:
    """Ask for the evaluation (as the caller of `registry`) and wait for its figures."""
    requested = await registry.stub.EvaluateVersion(registry_pb2.EvaluateRequest(version_id=version_id))
    assert requested.status == TESTING
    return await registry.wait_until(
        version_id, lambda v: v.evaluation.finished or v.status != TESTING, "the evaluation to finish"
    )


async def approved_version(
    services: Platform, jobs: JobClient, registry: RegistryClient, org: str, uri: str
) -> registry_pb2.ModelVersion:
    """Trained by "dev", evaluated by "dev", approved by "carol"."""
    version = await train_version(jobs, registry, org, uri)
    await evaluated(registry, version.version_id)
    async with RegistryClient.connect(services.registry_target, services.token(subject="carol")) as carol:
        done = await carol.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version.version_id))
    assert done.status == APPROVED
    return done
