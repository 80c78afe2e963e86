"""job-svc's audit view and lineage graph over the five services' logs, on the real platform (issue 14,
items 1, 2 and 7): a deployed model's lineage reaches its samples and their labelers; the audit view
filters, pages and follows a correlation across services; an org_admin sees only its organization;
an auditor reads but changes nothing; a forged event on a topic is never projected."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from modelyard.v1 import audit_pb2, audit_pb2_grpc, datasets_pb2, deploy_pb2, jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_events.envelope import Actor, EventEnvelope
from modelyard_events.topics import dead_letter_topic, events_topic
from modelyard_events.wire import encode_envelope, message_headers
from modelyard_grpc import channel
from modelyard_grpc.values import timestamp
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.deploy_client import DeployClient
from tests.integration.deploy_flow import released
from tests.integration.job_client import JobClient
from tests.integration.registry_client import RegistryClient
from tests.integration.trainers import Trainers

# The module's fixture labels, trains, evaluates, releases and deploys once: more than the default
# 300 s may pass on a loaded 2-core machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
UP, DOWN = audit_pb2.LINEAGE_DIRECTION_UPSTREAM, audit_pb2.LINEAGE_DIRECTION_DOWNSTREAM


@dataclass(frozen=True)
class Deployed:
    """One organization's model, from labeled samples to an edge server."""

    org: str
    dataset_id: str
    version_node: str  # <dataset_id>/<n>
    sample_ids: list[str]
    job_id: str
    version_id: str
    server_id: str
    rollout_id: str


@pytest.fixture(scope="module")
async def deployed(services: Platform) -> Deployed:
    """Samples uploaded by "uma", labeled by "lena", approved by "rita"; a version published; a job
    trained on it by "dev"; the model evaluated, approved and released by "carol"; deployed to one
    edge server (then the agent and the trainer are stopped)."""
    org = f"org-{uuid.uuid4().hex[:8]}"
    tokens = {who: services.token(subject=who) for who in ("uma", "lena", "rita")}
    async with DatasetClient.connect(services.dataset_target, tokens["uma"]) as uma:
        dataset = await uma.create(org, ["0", "1"])
        files = digit_files(10, range(2))
        uploaded = await uma.upload(dataset.dataset_id, [(name, data) for name, data, _ in files])
    by_name = {s.filename: s.sample_id for s in uploaded.samples}
    async with DatasetClient.connect(services.dataset_target, tokens["lena"]) as lena:
        await lena.label(dataset.dataset_id, [(by_name[name], cls) for name, _, cls in files])
    async with DatasetClient.connect(services.dataset_target, tokens["rita"]) as rita:
        for sample_id in by_name.values():
            await rita.approve(sample_id)
        version = await rita.stub.PublishVersion(
            datasets_pb2.PublishVersionRequest(
                dataset_id=dataset.dataset_id, seed=5, family="image_classifier"
            )
        )
    assert version.readiness.ready, version.readiness
    server = f"edge-lineage-{uuid.uuid4().hex[:6]}"
    async with (
        JobClient.connect(services.job_target, services.token()) as jobs,
        RegistryClient.connect(services.registry_target, services.token()) as registry,
        DeployClient.connect(services.deploy_target, services.token(subject="ops")) as deploy,
    ):
        trainers = Trainers(services, jobs)
        await trainers.start(f"t-lineage-{org}")
        try:
            model = await released(services, jobs, registry, org, version.uri)
        finally:
            await trainers.stop_all()
        agent = services.start_edge_agent(server, org)
        try:
            await deploy.wait_registered(org, server)
            rollout = await deploy.rollout(model.version_id, [server], wave_sizes=[1], reason="lineage test")
            done = await deploy.wait_rollout(rollout.rollout_id)
            assert done.state == deploy_pb2.ROLLOUT_STATE_COMPLETED, done
        finally:
            services.stop_edge_agent(agent)
    node = f"{dataset.dataset_id}/{version.version}"
    return Deployed(
        org, dataset.dataset_id, node, sorted(by_name.values()), model.training_job_id, model.version_id,
        server, rollout.rollout_id,
    )  # fmt: skip


def _audit(
    services: Platform, *roles: str, org: str | None = None, subject: str = "audrey"
) -> grpc.aio.Channel:
    return channel(services.job_target, services.token(roles, org_id=org, subject=subject))


async def _whole_lineage(
    stub: audit_pb2_grpc.AuditServiceStub, kind: str, node_id: str, direction: int, page_size: int = 0
) -> tuple[list[audit_pb2.LineageNode], list[audit_pb2.LineageEdge], int]:
    nodes: list[audit_pb2.LineageNode] = []
    edges: list[audit_pb2.LineageEdge] = []
    token, pages = "", 0
    while True:
        page = await stub.GetLineage(
            audit_pb2.GetLineageRequest(
                kind=kind, id=node_id, direction=direction, page_size=page_size, page_token=token
            )
        )
        nodes += page.nodes
        edges += page.edges
        pages += 1
        token = page.next_page_token
        if not token:
            return nodes, edges, pages


async def test_a_deployed_models_lineage_reaches_its_samples_their_labelers_and_who_released_it(
    services: Platform, deployed: Deployed
) -> None:
    async with _audit(services, "auditor") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)

        async def reaches_the_samples() -> bool:
            try:
                nodes, _, _ = await _whole_lineage(stub, "edge_server", deployed.server_id, UP)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # the views follow the logs
                    return False
                raise
            return len([n for n in nodes if n.kind == "sample"]) == len(deployed.sample_ids)

        await eventually(reaches_the_samples, 120, "the edge server's lineage down to the samples")
        nodes, edges, _ = await _whole_lineage(stub, "edge_server", deployed.server_id, UP)
        paged, paged_edges, pages = await _whole_lineage(
            stub, "edge_server", deployed.server_id, UP, page_size=3
        )

    by_kind: dict[str, list[audit_pb2.LineageNode]] = {}
    for n in nodes:
        by_kind.setdefault(n.kind, []).append(n)
    assert [n.id for n in by_kind["model_version"]] == [deployed.version_id]
    assert [n.id for n in by_kind["job"]] == [deployed.job_id]
    assert [n.id for n in by_kind["dataset_version"]] == [deployed.version_node]
    assert sorted(n.id for n in by_kind["sample"]) == deployed.sample_ids
    assert len(by_kind["deployment"]) == 1
    links = {(e.to_kind, e.from_kind, e.relation) for e in edges}
    assert links == {
        ("edge_server", "deployment", "deployed_to"),
        ("deployment", "model_version", "deploys"),
        ("model_version", "job", "trained_by"),
        ("job", "dataset_version", "trained_on"),
        ("dataset_version", "sample", "contains"),
    }
    for sample in by_kind["sample"]:
        acts = {(a.act, a.subject) for a in sample.acts}
        assert {("uploaded", "uma"), ("labeled", "lena"), ("reviewed", "rita")} <= acts
        assert sample.sample.sha256
        assert sample.sample.filename
        assert sample.sample.size_bytes > 0
        assert sample.sample.file_uri == ""  # an auditor checks hashes, not the customer's files
        assert sample.org_id == deployed.org
    version_acts = {(a.act, a.subject) for a in by_kind["model_version"][0].acts}
    assert {
        ("created", "dev"),
        ("evaluated", "dev"),
        ("approved", "carol"),
        ("released", "carol"),
    } <= version_acts
    assert ("deployed", "ops") in {(a.act, a.subject) for a in by_kind["deployment"][0].acts}
    assert ("created", "dev") in {(a.act, a.subject) for a in by_kind["job"][0].acts}
    # Pages of three hold the same graph, each node once.
    assert pages > 1
    assert [(n.kind, n.id) for n in paged] == [(n.kind, n.id) for n in nodes]
    assert {(e.from_id, e.to_id) for e in paged_edges} == {(e.from_id, e.to_id) for e in edges}

    # Downstream from one sample: the version, the job, the model, the deployment and the server.
    async with _audit(services, "super_admin", subject="root") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        down, _, _ = await _whole_lineage(stub, "sample", deployed.sample_ids[0], DOWN)
        start = (
            await stub.GetLineage(audit_pb2.GetLineageRequest(kind="sample", id=deployed.sample_ids[0]))
        ).start
    assert {n.kind for n in down} == {
        "sample",
        "dataset_version",
        "job",
        "model_version",
        "deployment",
        "edge_server",
    }
    assert start.sample.file_uri == f"dataset://{deployed.dataset_id}/files/{start.sample.sha256}"


async def test_the_audit_view_filters_pages_and_follows_a_correlation_across_services(
    services: Platform, deployed: Deployed
) -> None:
    async with _audit(services, "auditor") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)

        async def search(**filters: object) -> list[audit_pb2.AuditEvent]:
            found, token = [], ""
            while True:
                page = await stub.SearchAudit(audit_pb2.SearchAuditRequest(page_token=token, **filters))  # type: ignore[arg-type]
                found += page.events
                if not (token := page.next_page_token):
                    return found

        async def deployment_seen() -> bool:
            return bool(await search(org_id=deployed.org, type="DeploymentCreated"))

        await eventually(deployment_seen, 120, "deploy-svc's DeploymentCreated in the audit view")

        everything = await search(org_id=deployed.org, page_size=1000)
        assert {e.source for e in everything} >= {"dataset", "job", "trainer", "registry", "deploy"}
        keys = [(e.occurred_at.ToDatetime(), e.source, e.position) for e in everything]
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)
        assert all(e.org_id == deployed.org for e in everything)

        paged = await search(org_id=deployed.org, page_size=7)
        assert [(e.source, e.position) for e in paged] == [(e.source, e.position) for e in everything]

        job_events = await search(stream_type="training_job", stream_id=deployed.job_id)
        assert job_events[0].type == "JobCreated"
        assert {e.stream_id for e in job_events} == {deployed.job_id}

        by_carol = await search(org_id=deployed.org, actor="carol")
        assert {e.type for e in by_carol} == {"ModelApproved", "ModelReleased"}
        rollout = await search(type="RolloutStarted", stream_id=deployed.rollout_id)
        assert [(e.reason, e.actor_subject) for e in rollout] == [("lineage test", "ops")]

        first = everything[0].occurred_at.ToDatetime(tzinfo=UTC)
        window = await search(
            org_id=deployed.org,
            since=everything[0].occurred_at,
            until=timestamp(first + timedelta(microseconds=1)),
        )
        assert window
        assert all(e.occurred_at == everything[0].occurred_at for e in window)
        assert await search(org_id=deployed.org, until=everything[0].occurred_at) == []

        # The registry asked for the evaluation; job-svc's evaluation job carries the request's correlation.
        (requested,) = await search(org_id=deployed.org, type="ModelEvaluationRequested")
        trail_page = await stub.FollowCorrelation(
            audit_pb2.FollowCorrelationRequest(correlation_id=requested.correlation_id, page_size=1000)
        )
        trail = list(trail_page.events)
    assert {"registry", "job"} <= {e.source for e in trail}
    assert "JobCreated" in {e.type for e in trail if e.source == "job"}
    assert all(e.correlation_id == requested.correlation_id for e in trail)
    times = [e.occurred_at.ToDatetime() for e in trail]
    assert times == sorted(times)


async def test_an_org_admin_sees_only_its_organization_and_an_auditor_changes_nothing(
    services: Platform, deployed: Deployed, fresh_org: str
) -> None:
    async with _audit(services, "org_admin", org=fresh_org, subject="ada") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as other_org:
            await stub.SearchAudit(audit_pb2.SearchAuditRequest(org_id=deployed.org))
        assert other_org.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "org_id" in (other_org.value.details() or "")
        own = await stub.SearchAudit(
            audit_pb2.SearchAuditRequest(stream_type="training_job", stream_id=deployed.job_id)
        )
        assert list(own.events) == []  # the other organization's job is not in its view
        with pytest.raises(grpc.aio.AioRpcError) as lineage:
            await stub.GetLineage(audit_pb2.GetLineageRequest(kind="model_version", id=deployed.version_id))
        assert lineage.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert deployed.org not in (lineage.value.details() or "")  # who owns it is not the caller's to learn
        trail = await stub.FollowCorrelation(audit_pb2.FollowCorrelationRequest(correlation_id="x"))
        assert list(trail.events) == []

    async with _audit(services, "edge", org=deployed.org, subject=deployed.server_id) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as edge:
            await audit_pb2_grpc.AuditServiceStub(ch).SearchAudit(audit_pb2.SearchAuditRequest())
        assert edge.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async with _audit(services, "auditor") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as command:
            await jobs_pb2_grpc.JobServiceStub(ch).CancelJob(
                jobs_pb2.JobCommand(job_id=deployed.job_id, reason="auditors may not")
            )
        assert command.value.code() == grpc.StatusCode.PERMISSION_DENIED
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as bad_token:
            await stub.SearchAudit(audit_pb2.SearchAuditRequest(page_token="forged"))
        assert bad_token.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as too_many:
            await stub.SearchAudit(audit_pb2.SearchAuditRequest(page_size=100_000))
        assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_size" in (too_many.value.details() or "")


async def test_a_forged_event_on_a_topic_is_dead_lettered_and_never_in_the_audit_view_or_lineage(
    services: Platform, deployed: Deployed
) -> None:
    namespace = services.base_env["MODELYARD_TOPIC_NAMESPACE"]
    topic = events_topic("deploy", namespace)
    forged_id = uuid.uuid4()
    fake_server = f"edge-forged-{forged_id.hex[:6]}"
    forged = EventEnvelope(
        event_id=forged_id, stream_type="edge_server", stream_id=fake_server, stream_version=1,
        position=10_000_000, type="EdgeServerRegistered", schema_version=1,
        occurred_at=datetime.now(UTC), actor=Actor(subject="mallory", roles=("super_admin",)),
        org_id=deployed.org, correlation_id="forged", causation_id=None,
        data={"server_id": fake_server, "org_id": deployed.org, "environment": "production",
              "platform": "linux/amd64", "edge_version": "1.0.0"},
        prev_hash="0" * 64, hash="f" * 64,
    )  # fmt: skip
    value = encode_envelope(forged)
    producer = AIOKafkaProducer(bootstrap_servers=services.infra.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, value, key=fake_server.encode(), headers=message_headers(forged, None)
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        dead_letter_topic(topic),
        bootstrap_servers=services.infra.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=f"dlq-{uuid.uuid4().hex}",
    )
    await consumer.start()
    try:

        async def dead_lettered_by_the_audit_views() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            return any(
                r.value == value and dict(r.headers).get("projection") == b"audit_views"
                for rs in batches.values()
                for r in rs
            )

        await eventually(dead_lettered_by_the_audit_views, 60, "the forged event in the audit runner's DLQ")
    finally:
        await consumer.stop()
    async with _audit(services, "auditor") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        found = await stub.SearchAudit(
            audit_pb2.SearchAuditRequest(stream_type="edge_server", stream_id=fake_server)
        )
        assert list(found.events) == []
        by_mallory = await stub.SearchAudit(audit_pb2.SearchAuditRequest(actor="mallory"))
        assert list(by_mallory.events) == []
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetLineage(audit_pb2.GetLineageRequest(kind="edge_server", id=fake_server))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
