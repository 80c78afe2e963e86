"""job-svc against a stand-in registry: CreateJob checks a fine-tuning base through RegistryService.GetVersion
(the statuses of each refusal), and job-svc follows the registry's log (its EventLog.ReadEvents) for the
version a job became and for the evaluation runs the registry asks for.

The stand-in is a grpc.aio server in the test process: GetVersion answers from a dict, ReadEvents serves
a real store signed with the platform's registry key. A job-svc process of its own points at it (its own
schemas and topics, so no trainer of the session picks up its jobs); registry-svc itself is not involved.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc import aio

from modelyard.v1 import events_pb2_grpc, jobs_pb2, registry_pb2, registry_pb2_grpc
from modelyard_devstack import Infra
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import free_port
from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.schemas.jobs import ModelInput
from modelyard_events.schemas.registry import (
    MODULE_STREAM,
    ModelConfig,
    ModelEvaluationRequested,
    ModelVersionRegistered,
)
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_grpc import EventLogServicer, read_events
from modelyard_grpc.auth import bearer_token
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration
SHA = "ab" * 32


@dataclass
class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """GetVersion from `versions` (or UNAVAILABLE while `overloaded`); ReadEvents from `log`."""

    log: PostgresEventStore
    versions: dict[str, registry_pb2.ModelVersion] = field(default_factory=dict)
    overloaded: bool = False
    tokens: list[str] = field(default_factory=list)

    async def GetVersion(  # noqa: N802 — the proto's method name
        self, request: registry_pb2.ModelVersionRef, context: aio.ServicerContext[Any, Any]
    ) -> registry_pb2.ModelVersion:
        self.tokens.append(bearer_token(str(dict(context.invocation_metadata() or ())["authorization"])))
        if self.overloaded:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "shedding load")
        if request.version_id not in self.versions:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no model version {request.version_id}")
        return self.versions[request.version_id]

    async def ReadEvents(self, request: Any, context: aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        return await read_events(self.log, request)


@dataclass
class Setup:
    registry: FakeRegistry
    target: str  # the job-svc that asks it
    store: PostgresEventStore  # that job-svc's own log
    token: str  # that job-svc's own token, as its issuer wrote it


async def serve(*servicers: tuple[Any, Any]) -> tuple[aio.Server, str]:
    server = aio.server()
    for add, servicer in servicers:
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def setup(services: Platform, stack: Infra) -> AsyncIterator[Setup]:
    suffix = uuid.uuid4().hex[:8]
    engine = create_engine(stack.database_url, pool_size=4)
    registry_log = PostgresEventStore(engine, f"fake_registry_{suffix}", signer=services.signers["registry"])
    trainer_log = PostgresEventStore(engine, f"fake_trainer_{suffix}", signer=services.signers["trainer"])
    job_log = PostgresEventStore(engine, f"job_ft_{suffix}")  # read only here; job-svc writes and signs
    for store in (registry_log, trainer_log):
        await store.create_schema()
    registry = FakeRegistry(registry_log)
    registry_server, registry_target = await serve(
        (registry_pb2_grpc.add_RegistryServiceServicer_to_server, registry),
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(registry_log)),
    )
    # An empty trainer log: this job-svc must not react to the session's trainers' reports.
    trainer_server, trainer_target = await serve(
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(trainer_log))
    )
    port, name = free_port(), f"job-svc-ft-{suffix}"
    token = services.token_file("job-svc-ft", ("auditor",), ("dataset-svc", "trainer-svc", "registry-svc"))
    env = {
        **services.signing_env("job"),
        "MODELYARD_JOB_GRPC_PORT": str(port),
        "MODELYARD_REGISTRY_SVC_TARGET": registry_target,
        "MODELYARD_TRAINER_SVC_TARGET": trainer_target,
        "MODELYARD_TOKEN_FILE": str(token),
        "MODELYARD_TOPIC_NAMESPACE": f"ft-{suffix}",
        "MODELYARD_STORE_SCHEMA": job_log.schema,
        "MODELYARD_VIEWS_SCHEMA": f"job_ft_views_{suffix}",
        "MODELYARD_LIVE_SCHEMA": f"job_ft_live_{suffix}",
        "MODELYARD_REACTIONS_SCHEMA": f"job_ft_reactions_{suffix}",
        "MODELYARD_EVALUATION_PRIORITY": "65",
    }
    target = f"127.0.0.1:{port}"
    await asyncio.to_thread(services.start_service, name, "modelyard_job", [], target, env)
    try:
        yield Setup(registry, target, job_log, token.read_text().strip())
    finally:
        await asyncio.to_thread(services.stop, name)
        await registry_server.stop(grace=None)
        await trainer_server.stop(grace=None)
        await engine.dispose()


@pytest.fixture
async def jobs(services: Platform, setup: Setup) -> AsyncIterator[JobClient]:
    """A super_admin client of the job-svc that asks the stand-in registry."""
    async with JobClient.connect(setup.target, services.token()) as client:
        yield client


def version(
    org_id: str, status: int = registry_pb2.MODEL_STATUS_APPROVED, **fields: Any
) -> registry_pb2.ModelVersion:
    values: dict[str, Any] = {
        "version_id": f"mv-{uuid.uuid4().hex[:8]}",
        "org_id": org_id,
        "ai_module": "digit-reader",
        "semantic_version": "1.2.0",
        "config": registry_pb2.ModelConfig(family="image_classifier"),
        "artifact_sha256": SHA,
        "artifact_size_bytes": 4096,
        "status": status,
    }
    return registry_pb2.ModelVersion(**(values | fields))


def fine_tune(org_id: str, base_version_id: str, **fields: Any) -> jobs_pb2.CreateJobRequest:
    values: dict[str, Any] = {
        "name": "digits, fine-tuned",
        "ai_module": "digit-reader",
        "family": "image_classifier",
        "dataset_uri": "file:///data/digits.npz",
        "org_id": org_id,
        "base_version_id": base_version_id,
        "description": "the approved model on more scans",
    }
    return jobs_pb2.CreateJobRequest(**(values | fields))


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def append_to_registry_log(setup: Setup, org_id: str, event: DomainEvent) -> None:
    log = setup.registry.log
    stream = f"{org_id}/digit-reader"
    context = CommandContext(actor=Actor(subject="bob", roles=("super_admin",)), org_id=org_id)
    await log.append(MODULE_STREAM, stream, len(await log.read_stream(stream)), [event], context)


class TestFineTuningBases:
    async def test_an_approved_base_becomes_the_jobs_model_input_and_is_shown(
        self, jobs: JobClient, setup: Setup, fresh_org: str
    ) -> None:
        base = version(fresh_org)
        setup.registry.versions[base.version_id] = base

        job = await jobs.jobs.CreateJob(fine_tune(fresh_org, base.version_id))

        assert (job.kind, job.base_version_id, job.description) == (
            "training",
            base.version_id,
            "the approved model on more scans",
        )
        created = (await setup.store.read_stream(job.job_id))[0]
        assert ModelInput(**created.data["model_input"]) == ModelInput(
            version_id=base.version_id,
            ai_module="digit-reader",
            semantic_version="1.2.0",
            artifact_sha256=SHA,
            artifact_size_bytes=4096,
        )
        shown = await jobs.wait_until(
            job.job_id, lambda j: j.HasField("base_version_id"), "base in the views"
        )
        assert shown.base_version_id == base.version_id

    async def test_the_registry_is_asked_with_job_svcs_own_token(
        self, jobs: JobClient, setup: Setup, fresh_org: str
    ) -> None:
        base = version(fresh_org, registry_pb2.MODEL_STATUS_RELEASED)
        setup.registry.versions[base.version_id] = base

        await jobs.jobs.CreateJob(fine_tune(fresh_org, base.version_id))

        assert setup.registry.tokens[-1] == setup.token

    async def test_an_unknown_base_is_an_invalid_argument_naming_it(
        self, jobs: JobClient, fresh_org: str
    ) -> None:
        error = await refusal(jobs.jobs.CreateJob(fine_tune(fresh_org, "mv-nowhere")))

        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "base_version_id: no model version 'mv-nowhere' is registered" in (error.details() or "")
        assert list((await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))).jobs) == []

    @pytest.mark.parametrize(
        ("status", "name"),
        [(registry_pb2.MODEL_STATUS_DRAFT, "draft"), (registry_pb2.MODEL_STATUS_DEPRECATED, "deprecated")],
    )
    async def test_a_base_not_approved_or_released_is_a_failed_precondition_naming_its_status(
        self, jobs: JobClient, setup: Setup, fresh_org: str, status: int, name: str
    ) -> None:
        base = version(fresh_org, status)
        setup.registry.versions[base.version_id] = base

        error = await refusal(jobs.jobs.CreateJob(fine_tune(fresh_org, base.version_id)))

        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"is {name}; only approved or released versions can be fine-tuned" in (error.details() or "")

    @pytest.mark.parametrize(
        ("changes", "says"),
        [
            ({"ai_module": "face-finder"}, "is a model of ai_module 'face-finder', not 'digit-reader'"),
            (
                {"config": registry_pb2.ModelConfig(family="tabular_classifier")},
                "is a tabular_classifier, not a image_classifier",
            ),
        ],
        ids=["module", "family"],
    )
    async def test_a_base_of_another_module_or_family_is_an_invalid_argument_saying_which(
        self, jobs: JobClient, setup: Setup, fresh_org: str, changes: dict[str, Any], says: str
    ) -> None:
        base = version(fresh_org, **changes)
        setup.registry.versions[base.version_id] = base

        error = await refusal(jobs.jobs.CreateJob(fine_tune(fresh_org, base.version_id)))

        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert says in (error.details() or "")

    async def test_an_unavailable_registry_is_unavailable_and_creates_nothing(
        self, jobs: JobClient, setup: Setup, fresh_org: str
    ) -> None:
        base = version(fresh_org)
        setup.registry.versions[base.version_id] = base
        setup.registry.overloaded = True
        try:
            error = await refusal(jobs.jobs.CreateJob(fine_tune(fresh_org, base.version_id)))
        finally:
            setup.registry.overloaded = False

        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "registry-svc could not confirm" in (error.details() or "")
        assert list((await jobs.jobs.ListJobs(jobs_pb2.ListJobsRequest(org_id=fresh_org))).jobs) == []


class TestFollowingTheRegistrysLog:
    async def test_the_version_a_job_became_is_shown_as_its_output_version(
        self, jobs: JobClient, setup: Setup, fresh_org: str
    ) -> None:
        job = await jobs.jobs.CreateJob(fine_tune(fresh_org, "", description=""))
        registered = ModelVersionRegistered(
            version_id=f"mv-{uuid.uuid4().hex[:8]}",
            org_id=fresh_org,
            ai_module="digit-reader",
            semantic_version="1.0.0",
            bump=None,
            bump_reason="the module's first version",
            name="digits, fine-tuned",
            training_job_id=job.job_id,
            created_by="dev",
            artifact_uri=f"blob://{SHA}",
            artifact_sha256=SHA,
            artifact_size_bytes=4096,
            config=ModelConfig(
                family="image_classifier",
                input_shape=[1, 8, 8],
                input_schema_sha256=SHA,
                preprocessing="image",
                config_uri=f"blob://{SHA}",
                config_sha256=SHA,
            ),
            training_metrics={"val_accuracy": 0.9},
            dataset_uri="file:///data/digits.npz",
            min_edge_version="1.0.0",
            supported_platforms=["linux-x86_64"],
        )

        await append_to_registry_log(setup, fresh_org, registered)

        shown = await jobs.wait_until(
            job.job_id, lambda j: j.HasField("output_version_id"), "the output version", timeout_s=60
        )
        assert shown.output_version_id == registered.version_id
        timeline = await jobs.queries.GetJobEvents(jobs_pb2.JobRef(job_id=job.job_id))
        assert "ModelVersionRegistered" in [e.type for e in timeline.events]

    async def test_an_evaluation_the_registry_asks_for_becomes_a_queued_evaluation_job(
        self, jobs: JobClient, setup: Setup, fresh_org: str
    ) -> None:
        job_id = f"job-ev-{uuid.uuid4().hex[:12]}"
        requested = ModelEvaluationRequested(
            version_id="mv-under-test",
            org_id=fresh_org,
            ai_module="digit-reader",
            semantic_version="1.0.0",
            family="image_classifier",
            artifact_sha256=SHA,
            artifact_size_bytes=4096,
            evaluation_id=f"ev-{uuid.uuid4().hex[:8]}",
            job_id=job_id,
            dataset_uri="file:///data/digits.npz",
            split="val",
            requested_by="bob",
        )

        await append_to_registry_log(setup, fresh_org, requested)

        job = await jobs.wait_for(job_id, jobs_pb2.JOB_STATE_QUEUED, timeout_s=60)
        assert (job.kind, job.model_version_id, job.name) == (
            "evaluation",
            "mv-under-test",
            "evaluate digit-reader 1.0.0",
        )
        assert (job.priority, job.created_by, job.org_id) == (65, "bob", fresh_org)
        created = (await setup.store.read_stream(job_id))[0]
        assert (created.data["evaluation_id"], created.data["evaluation_split"]) == (
            requested.evaluation_id,
            "val",
        )
