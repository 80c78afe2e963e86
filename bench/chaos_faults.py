"""Injecting the campaign's faults and timing each recovery.

Every process kind is killed with SIGKILL (its whole session, as a crash would) and started again at
once, as a supervisor (Kubernetes) would; the broker too, so it comes back empty on the same port;
PostgreSQL too, so it comes back on the same data through crash recovery. A fault has recovered when
the thing it hit answers again: a service reports SERVING; a trainer worker or an edge agent has been
heard from (a heartbeat recorded after its restart); the broker carries a new event from dataset-svc's
log into job-svc's audit view; PostgreSQL answers every service's ReadEvents and takes a new dataset.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from subprocess import Popen

import grpc
from chaos_plan import BROKER, EDGE_AGENT, POSTGRES, SERVICES, TRAINER_WORKER
from chaos_workload import ORG, Workload

from modelyard.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    deploy_pb2,
    deploy_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
)
from modelyard_devstack.broker import EmbeddedBroker
from modelyard_devstack.platform import EdgeAgent, Platform
from modelyard_devstack.postgres import EmbeddedPostgres
from modelyard_devstack.processes import kill_pid
from modelyard_grpc import wait_until_serving

RECOVERY_TIMEOUT_S = 180.0
POLL_S = 0.1


@dataclass(frozen=True)
class InjectedFault:
    """A fault as it happened: what was hit, when (s after the workload began), and how it ended."""

    kind: str
    victim: str
    at_s: float
    recovery_s: float | None  # None: it did not recover within RECOVERY_TIMEOUT_S
    error: str = ""
    server_back_s: float | None = None  # broker and PostgreSQL: how much of it was the server's own restart


@dataclass
class Chaos:
    """What the faults act on: the platform's processes, the servers under it, the workload's clients."""

    running: Platform
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    workload: Workload
    trainer_ids: list[str]
    agents: list[EdgeAgent]
    rng: random.Random
    _server_back_s: float | None = field(default=None, init=False)  # of the fault being injected

    async def inject(self, kind: str, at_s: float) -> InjectedFault:
        """Inject one fault of `kind`; return once it recovered (or failed to)."""
        victim, recover = self._fault(kind)
        self._server_back_s = None
        started = time.monotonic()
        try:
            await asyncio.wait_for(recover(), RECOVERY_TIMEOUT_S)
        except Exception as error:  # a fault that does not recover is a finding, not a crash
            return InjectedFault(kind, victim, at_s, None, f"{type(error).__name__}: {error}")
        recovered = round(time.monotonic() - started, 3)
        return InjectedFault(kind, victim, at_s, recovered, server_back_s=self._server_back_s)

    def _fault(self, kind: str) -> tuple[str, Callable[[], Awaitable[None]]]:
        if kind in SERVICES:
            return kind, lambda: self._kill_and_restart_service(kind)
        if kind == TRAINER_WORKER:
            trainer_id = self.rng.choice(self.trainer_ids)
            return f"trainer-{trainer_id}", lambda: self._kill_trainer(trainer_id)
        if kind == EDGE_AGENT:
            index = self.rng.randrange(len(self.agents))
            return self.agents[index].server_id, lambda: self._kill_agent(index)
        if kind == BROKER:
            return "tansu", self._restart_broker_empty
        if kind == POSTGRES:
            return "postgresql", self._restart_postgres
        raise ValueError(f"no fault of kind {kind!r}")

    async def _kill_and_restart_service(self, name: str) -> None:
        await asyncio.to_thread(kill_pid, self.running.processes.pop(name).pid)
        module, args, target, env = self.running.started[name]
        # Platform.start_service waits for SERVING in an event loop of its own, which grpc.aio cannot
        # share with this one (its poller is bound to one loop): start the process as it does, and
        # wait for SERVING here while the workload goes on.
        process = self.running._start(name, args, module, {**self.running.base_env, **env})
        await _until(lambda: self._serving(target, process))

    async def _kill_trainer(self, trainer_id: str) -> None:
        name = f"trainer-{trainer_id}"
        await asyncio.to_thread(kill_pid, self.running.processes.pop(name).pid)
        restarted = datetime.now(UTC)
        process = self.running.spawn_trainer(trainer_id)
        await _until(lambda: self._trainer_heard_since(trainer_id, restarted, process))

    async def _kill_agent(self, index: int) -> None:
        agent = self.agents[index]
        await asyncio.to_thread(self.running.stop_edge_agent, agent, True)
        restarted = datetime.now(UTC)
        self.agents[index] = await asyncio.to_thread(self.running.restart_edge_agent, agent)
        await _until(lambda: self._agent_heard_since(agent, restarted))

    async def _restart_broker_empty(self) -> None:
        await self._timed(functools.partial(_crash_and_start, self.broker))
        dataset_id = await self.workload.create_dataset(f"broker probe {uuid.uuid4().hex[:8]}")
        if dataset_id is None:
            raise RuntimeError("dataset-svc did not take the probe dataset after the broker restart")
        await _until(lambda: self._audited(dataset_id))

    async def _restart_postgres(self) -> None:
        await self._timed(functools.partial(_crash_and_start, self.postgres))
        targets = [
            self.running.dataset_target, self.running.job_target, self.running.trainer_target,
            self.running.registry_target, self.running.deploy_target,
        ]  # fmt: skip
        for target in targets:
            await _until(lambda t=target: self._reads_events(t))  # type: ignore[misc]
        if await self.workload.create_dataset(f"postgres probe {uuid.uuid4().hex[:8]}") is None:
            raise RuntimeError("dataset-svc did not take the probe dataset after the PostgreSQL restart")

    async def _timed(self, restart: Callable[[], None]) -> None:
        started = time.monotonic()
        await asyncio.to_thread(restart)
        self._server_back_s = round(time.monotonic() - started, 3)

    async def _trainer_heard_since(self, trainer_id: str, since: datetime, process: Popen[bytes]) -> bool:
        _running(process)
        async with self._channel(self.running.job_target) as ch:
            reply = await jobs_pb2_grpc.QueryServiceStub(ch).ListTrainers(
                jobs_pb2.ListTrainersRequest(), timeout=5
            )
        return any(
            t.trainer_id == trainer_id and t.alive and t.last_heartbeat_at.ToDatetime(UTC) > since
            for t in reply.trainers
        )

    async def _agent_heard_since(self, agent: EdgeAgent, since: datetime) -> bool:
        async with self._channel(self.running.deploy_target) as ch:
            detail = await deploy_pb2_grpc.DeployServiceStub(ch).GetEdgeServer(
                deploy_pb2.EdgeServerRef(server_id=agent.server_id, org_id=agent.org_id), timeout=5
            )
        heard = detail.server.last_heartbeat_at
        return bool(detail.server.HasField("last_heartbeat_at") and heard.ToDatetime(UTC) > since)

    async def _audited(self, dataset_id: str) -> bool:
        async with self._channel(self.running.job_target) as ch:
            found = await audit_pb2_grpc.AuditServiceStub(ch).SearchAudit(
                audit_pb2.SearchAuditRequest(stream_id=dataset_id, org_id=ORG), timeout=5
            )
        return bool(found.events)

    async def _serving(self, target: str, process: Popen[bytes]) -> bool:
        _running(process)
        async with self.running.channel(target) as ch:
            await wait_until_serving(ch, timeout_s=2.0)
        return True

    async def _reads_events(self, target: str) -> bool:
        async with self._channel(target) as ch:
            await events_pb2_grpc.EventLogStub(ch).ReadEvents(
                events_pb2.ReadEventsRequest(limit=1), timeout=5
            )
        return True

    def _channel(self, target: str) -> grpc.aio.Channel:
        return self.running.channel(target, self.running.token(("auditor",)))


def _crash_and_start(server: EmbeddedPostgres | EmbeddedBroker) -> None:
    """SIGKILL a server (its whole session) and start it again on its port: Tansu keeps its data in
    memory, so it comes back empty; PostgreSQL comes back on its data folder, through crash recovery.

    Their `stop` is a SIGTERM, which PostgreSQL takes as a smart shutdown: it waits for the services'
    pooled connections, until `stop` kills it after 10 s anyway. A kill is also what the other faults are.
    """
    if server.pid is not None:
        kill_pid(server.pid)
        server.pid = None
    server.start()


def _running(process: Popen[bytes]) -> bool:
    """True while `process` runs; RuntimeError once it exited (a restart that did not take)."""
    if process.poll() is not None:
        raise RuntimeError(f"the restarted process {process.pid} exited with {process.returncode}")
    return True


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll until `condition` holds; an RPC error counts as not yet (the caller bounds the wait)."""
    while True:
        try:
            if await condition():
                return
        except (grpc.aio.AioRpcError, TimeoutError):
            pass
        await asyncio.sleep(POLL_S)
