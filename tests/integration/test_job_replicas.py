"""Two job-svc replicas on one database and broker, as deploy/k8s declares (`replicas: 2`).

They share the views (one schema: each event applied once, whichever replica's runner takes it),
are both members of each of job-svc's consumer groups (which split their partitions between them),
take dispatcher passes one at a time (an advisory lock), and when one is killed the other carries
on: its relay publishes, its runners take the partitions over, its dispatcher dispatches, and it
tells trainer-svc whose its dispatches are.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from modelyard.v1 import jobs_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually, free_port
from tests.integration.job_client import JobClient

pytestmark = pytest.mark.integration

COMPLETED = jobs_pb2.JOB_STATE_COMPLETED
# Every consumer group of job-svc: its views, the reactions to trainer and registry events, audit, usage.
GROUPS = (
    "job-svc.job_views",
    "job-svc.job_reactions",
    "job-svc.job_reactions.registry",
    "job-svc.job_views.audit",
    "job-svc.job_views.usage",
)
_FAILOVER_TIMEOUT_S = 240  # the killed replica's members leave when their sessions time out


async def test_two_replicas_share_the_work_and_one_carries_on_when_the_other_is_killed(
    services: Platform, fresh_org: str, digits_uri: str
) -> None:
    module, args, _, env = services.started["job-svc"]
    port = free_port()
    second = f"127.0.0.1:{port}"
    second_env = {**env, "MODELYARD_JOB_GRPC_PORT": str(port)}
    await asyncio.to_thread(services.start_service, "job-svc-2", module, args, second, second_env)
    # trainer-svc asks job-svc whose a dispatch is: through both replicas, as through a Kubernetes
    # Service (a gRPC target of several addresses goes on to the next when one stops answering).
    trainer_svc = services.started["trainer-svc"]
    both = {**trainer_svc[3], "MODELYARD_JOB_SVC_TARGET": f"ipv4:{services.job_target},{second}"}
    await asyncio.to_thread(_restart_with, services, "trainer-svc", both)
    bootstrap, token = services.infra.kafka_bootstrap_servers, services.token()
    try:
        # The worker heartbeats to the second replica; the first sees it alive too (liveness is shared).
        services.spawn_trainer("t-replicas", env={"MODELYARD_JOB_SVC_TARGET": second})
        await services.trainer_alive("t-replicas")
        async with (
            JobClient.connect(services.job_target, token) as one,
            JobClient.connect(second, token) as two,
        ):
            created = [
                (await one.create(fresh_org, digits_uri, epochs=1), two),
                (await two.create(fresh_org, digits_uri, epochs=1), one),
            ]
            for job, other in created:  # each read through the replica that did not create it
                assert (await other.wait_for(job.job_id, COMPLETED, timeout_s=240)).epochs_done == 1
            for job, _ in created:  # one dispatcher pass at a time: never two leases on a job at once
                assert _overlapping_dispatches(await one.event_types(job.job_id)) == 0

            async def both_members() -> bool:
                return await _members(bootstrap) == dict.fromkeys(GROUPS, 2)

            await eventually(both_members, 60, "both replicas in every consumer group")

            # The first replica dies without a word; the second dispatches, relays and projects alone.
            services.processes.pop("job-svc").send_signal(signal.SIGKILL)
            after = await two.create(fresh_org, digits_uri, epochs=1)
            done = await two.wait_for(after.job_id, COMPLETED, timeout_s=_FAILOVER_TIMEOUT_S)
            assert done.epochs_done == 1
            assert _overlapping_dispatches(await two.event_types(after.job_id)) == 0

            async def alone() -> bool:  # the killed replica's members left when their sessions timed out
                return await _members(bootstrap) == dict.fromkeys(GROUPS, 1)

            await eventually(alone, _FAILOVER_TIMEOUT_S, "the survivor alone in every consumer group")
    finally:
        with contextlib.suppress(KeyError):
            services.stop("trainer-t-replicas")
        with contextlib.suppress(KeyError):
            services.stop("job-svc-2")
        await asyncio.to_thread(services.restart_service, "job-svc")  # as the other tests expect it
        await asyncio.to_thread(_restart_with, services, "trainer-svc", trainer_svc[3])


def _restart_with(services: Platform, name: str, env: dict[str, str]) -> None:
    module, args, target, _ = services.started[name]
    services.stop(name)
    services.start_service(name, module, args, target, env)


async def _members(bootstrap: str) -> dict[str, int]:
    """How many members each of job-svc's consumer groups has.

    (Tansu answers DescribeGroups with the members but not their assignments, so the split of the
    partitions is not read here; the broker splits a group's partitions among its live members.)
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:  # one group a request: Tansu's answer to several does not decode
        responses = [r for group in GROUPS for r in await admin.describe_consumer_groups([group])]
    finally:
        await admin.close()
    return {group[1]: len(group[5]) for response in responses for group in response.groups}


def _overlapping_dispatches(types: list[str]) -> int:
    """Dispatches made while the job's previous lease was still held (two passes at once would).

    A dispatch after a lease expired is legitimate: on a loaded machine a 3 s lease can lapse.
    """
    overlapping, holding = 0, False
    for event_type in types:
        if event_type == "JobDispatched":
            overlapping += holding
            holding = True
        elif event_type in {"JobLeaseExpired", "JobPaused", "JobCancelled", "JobCompleted", "JobFailed"}:
            holding = False
    return overlapping
