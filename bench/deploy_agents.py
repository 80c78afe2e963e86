"""Agent processes of the rollout benchmark: many real edge agents as coroutines in one process.

Each agent is a `modelyard_edge.agent.EdgeAgent` with its own home, its own edge token (subject = its
server id) and its own two gRPC channels (to deploy-svc and registry-svc; the token rides on the
channel, so agents cannot share one), so deploy-svc sees one connection per edge server as it would
in the field. The agents of one process share one aiohttp session for downloads (each request
carries the agent's own token). A client interceptor counts the calls each method makes; a logging
handler counts warnings and errors (failed heartbeats, broken streams).

The process talks to the benchmark over a pipe: it sends ("ready", CPU seconds) once its imports
are done (PyTorch takes a while on a loaded machine), starts its agents when told "go", sends
("registered", seconds) once every agent has registered, answers "snapshot" with ("snapshot",
counts), and answers "stop" by stopping every agent and sending a last ("stopped", counts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from grpc import aio

from modelyard_grpc.client import MAX_RECEIVE_BYTES, bearer_token_interceptors

CHANNEL_OPTIONS = (("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),)


@dataclass(frozen=True)
class AgentSpec:
    """One edge server: its id, its edge token, its home folder."""

    server_id: str
    token: str
    home: Path


@dataclass(frozen=True)
class WorkerPlan:
    """One agent process: where the services are, which registry key is pinned, which agents to run."""

    deploy_target: str
    registry_target: str
    registry_public_keys: tuple[str, ...]
    agents: tuple[AgentSpec, ...]
    start_spread_s: float  # agents start spread over this many seconds (a fleet does not boot at once)
    log_file: Path


class _Counting:
    """Counts calls by method name (`Heartbeat`, `ReportProgress`, `GetDownloadUrl`, ...)."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    def _count(self, details: aio.ClientCallDetails) -> None:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        self.counts[method.rsplit("/", 1)[-1]] += 1


# grpc.aio files an interceptor under the first kind it implements: one class per kind.
class _UnaryCounter(_Counting, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], details: aio.ClientCallDetails, request: Any
    ) -> Any:
        self._count(details)
        return await continuation(details, request)


class _StreamCounter(_Counting, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Awaitable[Any]], details: aio.ClientCallDetails, request: Any
    ) -> Any:
        self._count(details)
        return await continuation(details, request)


class _LevelCounter(logging.Handler):
    def __init__(self, counts: Counter[str]) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"log_{record.levelname.lower()}"] += 1


def run_worker(plan: WorkerPlan, conn: Connection) -> None:
    """The process's entry point (multiprocessing, spawn)."""
    import torch  # each agent would have its own machine: one thread per model op here

    torch.set_num_threads(1)
    logging.basicConfig(
        filename=plan.log_file, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(_serve(plan, conn))


async def _serve(plan: WorkerPlan, conn: Connection) -> None:
    from modelyard_edge.agent import EdgeAgent
    from modelyard_edge.config import AgentConfig

    conn.send(("ready", time.process_time()))
    if await asyncio.to_thread(conn.recv) != "go":
        return
    calls: Counter[str] = Counter()
    logs: Counter[str] = Counter()
    logging.getLogger().addHandler(_LevelCounter(logs))
    stop = asyncio.Event()
    started = time.perf_counter()
    channels: list[aio.Channel] = []

    def dial(target: str, token: str) -> aio.Channel:
        interceptors = [*bearer_token_interceptors(token), _UnaryCounter(calls), _StreamCounter(calls)]
        ch = aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
        channels.append(ch)
        return ch

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        agents = []
        for spec in plan.agents:
            config = AgentConfig(
                server_id=spec.server_id,
                home=spec.home,
                token=spec.token,
                registry_public_keys=plan.registry_public_keys,
                deploy_target=plan.deploy_target,
                registry_target=plan.registry_target,
                hostname=spec.server_id,
            )
            agents.append(
                EdgeAgent(
                    config,
                    deploy_channel=dial(plan.deploy_target, spec.token),
                    registry_channel=dial(plan.registry_target, spec.token),
                    http_session=http,
                )
            )
        tasks = []
        pause = plan.start_spread_s / max(1, len(agents))
        for agent in agents:
            tasks.append(asyncio.create_task(agent.run(stop)))
            await asyncio.sleep(pause)
        await asyncio.gather(*(agent.registered.wait() for agent in agents))
        conn.send(("registered", time.perf_counter() - started))
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command == "snapshot":
                conn.send(("snapshot", _counts(calls, logs, agents)))
                continue
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ch in channels:
                await ch.close()
            conn.send(("stopped", _counts(calls, logs, agents)))
            return


def _counts(calls: Counter[str], logs: Counter[str], agents: list[Any]) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "calls": dict(calls),
        "logs": dict(logs),
        "reconnects": sum(agent.reconnects for agent in agents),
    }
