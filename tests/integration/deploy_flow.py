"""Steps the deploy tests share: released versions of one module, and edge agents playing servers."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import registry_pb2
from modelyard_devstack.platform import Platform
from tests.integration.job_client import JobClient
from tests.integration.registry_client import RELEASED, RegistryClient
from tests.integration.registry_flow import evaluated, train_version

MODULE = "edge-reader"


@dataclass(frozen=True)
class Fleet:
    """An organization with three released versions of MODULE in production, in this order: v1, v2 and
    `heavy` (eight times the filters: far slower to load and run; the current release)."""

    org: str
    v1: registry_pb2.ModelVersion
    v2: registry_pb2.ModelVersion
    heavy: registry_pb2.ModelVersion


async def released(
    services: Platform,
    jobs: JobClient,
    registry: RegistryClient,
    org: str,
    uri: str,
    module: str = MODULE,
    **hyperparameters: object,
) -> registry_pb2.ModelVersion:
    """Trained and evaluated by "dev", approved and released to production by "carol"."""
    version = await train_version(jobs, registry, org, uri, module=module, **hyperparameters)
    await evaluated(registry, version.version_id)
    ref = registry_pb2.VersionCommand(version_id=version.version_id)
    async with RegistryClient.connect(services.registry_target, services.token(subject="carol")) as carol:
        await carol.stub.ApproveVersion(ref)
        done = await carol.stub.ReleaseVersion(
            registry_pb2.ReleaseRequest(
                version_id=version.version_id, environment="production", release_notes="for the fleet"
            )
        )
    assert done.status == RELEASED
    return done
