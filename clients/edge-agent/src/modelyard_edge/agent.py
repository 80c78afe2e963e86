"""The edge agent: one edge server that registers, heartbeats, takes assignments and serves its models.

`EdgeAgent.run(stop)` is a coroutine that never blocks the event loop (PyTorch work and file hashing
run in threads), so a benchmark can run hundreds of agents in one process, sharing channels and an
HTTP session if it likes. The assignment stream is reconnected after any error with capped
exponential backoff (0.5 s … 30 s), forever: a slow or flaky link delays an install, it never
abandons it silently. Installs run one at a time; the same (deployment, attempt) is carried out once;
a cancelled deployment (in the stream, a heartbeat answer or a progress answer) is aborted and the
running model stays.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import grpc
from grpc import aio

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2_grpc
from modelyard_artifacts.download import https_context
from modelyard_artifacts.manifest import ManifestVerifier
from modelyard_edge.config import AgentConfig, bearer_metadata, edge_version
from modelyard_edge.installer import Installer
from modelyard_edge.messages import running_to_proto
from modelyard_edge.probing import ServedModel, load_version
from modelyard_edge.versions import VersionRefused, VersionsHome
from modelyard_grpc.tls import TlsSettings

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 10.0
DEAD_STREAM_AFTER_FAILED_BEATS = 2  # heartbeats failing in a row: the stream's link is likely dead too


class UnknownModule(LookupError):
    """`predict` for a module this edge runs no model of."""


class EdgeAgent:
    """One edge server. Channels and the HTTP session may be given (shared by many agents in one
    process): give channels that add no token, since every call carries the agent's own; the agent
    closes only what it opened itself."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        deploy_channel: aio.Channel | None = None,
        registry_channel: aio.Channel | None = None,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.home = VersionsHome(config.home)
        self._verifier = ManifestVerifier.from_texts(config.registry_public_keys)
        self._given_deploy, self._given_registry, self._given_http = (
            deploy_channel,
            registry_channel,
            http_session,
        )
        self._served: dict[str, ServedModel] = {}
        self._queue: asyncio.Queue[deploy_pb2.Assignment] = asyncio.Queue()
        self._seen: set[tuple[str, int]] = set()
        self._cancelled: set[str] = set()
        self._current: tuple[str, asyncio.Task[None]] | None = None
        self._heartbeat_s = DEFAULT_HEARTBEAT_S
        self.registered = asyncio.Event()
        self.reconnects = 0
        self._stream: Any = None  # the assignment stream's call while it is open
        self._failed_beats = 0

    # ---- serving ----

    def running(self) -> dict[str, ServedModel]:
        """The models served now, by module (what heartbeats report)."""
        return dict(self._served)

    async def predict(self, ai_module: str, inputs: Any) -> list[Any]:
        """Run the module's active model on `inputs` (in a thread): one output per input."""
        model = self._served.get(ai_module)
        if model is None:
            raise UnknownModule(f"server {self.config.server_id} runs no model of module {ai_module!r}")
        return await asyncio.to_thread(model.predict, inputs)

    async def load_active(self) -> None:
        """Load every module's active version, verified again (hash and signature) before use. When it
        fails, the module's previous version is used instead, if it verifies (and becomes active);
        otherwise the module is not served (logged)."""
        for ai_module, version_id in (await asyncio.to_thread(self.home.active_modules)).items():
            served = await self._verified(ai_module, version_id, "active")
            previous = self.home.previous_version(ai_module)
            if served is None and previous is not None:
                served = await self._verified(ai_module, previous, "previous")
                if served is not None:
                    await asyncio.to_thread(self.home.switch, ai_module, previous)
            if served is not None:
                self._served[ai_module] = served
                log.info(
                    "server %s: serving module %s with version %s",
                    self.config.server_id,
                    ai_module,
                    served.version_id,
                )

    async def _verified(self, ai_module: str, version_id: str, which: str) -> ServedModel | None:
        try:
            installed = await asyncio.to_thread(self.home.verify, version_id, self._verifier)
            return await asyncio.to_thread(load_version, installed, self.config.device)
        except (VersionRefused, ValueError, RuntimeError, OSError) as error:
            log.error(
                "server %s: module %s: its %s version %s cannot be used: %s",
                self.config.server_id,
                ai_module,
                which,
                version_id,
                error,
            )
            return None

    # ---- the agent's life ----

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set: load the active models, register, then heartbeat and take
        assignments; on return every task of the agent has ended."""
        async with self._connections() as (edge, registry, http):
            await self.load_active()
            installer = Installer(self.config, self.home, self._verifier, edge, registry, http, self._served)
            live = asyncio.create_task(self._live(edge, installer, stop))
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait([live, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (live, stopping):
                    task.cancel()
                await asyncio.gather(live, stopping, return_exceptions=True)
                await self._abort_current("the agent stops")
            if not live.cancelled() and (error := live.exception()) is not None:
                raise error

    async def _live(
        self, edge: deploy_pb2_grpc.EdgeServiceStub, installer: Installer, stop: asyncio.Event
    ) -> None:
        await self._register(edge, stop)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._heartbeats(edge))
            group.create_task(self._assignments(edge))
            group.create_task(self._installs(installer))

    async def _register(self, edge: deploy_pb2_grpc.EdgeServiceStub, stop: asyncio.Event) -> None:
        wait = self.config.reconnect_initial_s
        while not stop.is_set():
            try:
                answer: deploy_pb2.RegisterEdgeResponse = await edge.Register(
                    self._registration(), timeout=self.config.call_timeout_s, metadata=self._auth()
                )
            except aio.AioRpcError as error:
                log.warning(
                    "server %s: registration with deploy-svc at %s failed (%s: %s); again in %.1f s",
                    self.config.server_id,
                    self.config.deploy_target,
                    error.code().name,
                    error.details(),
                    wait,
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.config.reconnect_max_s)
                continue
            self._heartbeat_s = answer.heartbeat_interval_s or DEFAULT_HEARTBEAT_S
            log.info(
                "server %s: registered with deploy-svc (%s, edge %s; heartbeat every %.1f s)",
                self.config.server_id,
                self.config.resolved_platform,
                edge_version(),
                self._heartbeat_s,
            )
            self.registered.set()
            return

    def _registration(self) -> deploy_pb2.RegisterEdgeRequest:
        return deploy_pb2.RegisterEdgeRequest(
            server_id=self.config.server_id,
            environment=self.config.environment,
            platform=self.config.resolved_platform,
            edge_version=edge_version(),
            hostname=self.config.resolved_hostname,
            running=running_to_proto(self._served.values()),
        )

    async def _heartbeats(self, edge: deploy_pb2_grpc.EdgeServiceStub) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self._beat(edge)
            except Exception:  # a heartbeat must never end the agent
                log.exception("server %s: heartbeat failed", self.config.server_id)

    async def _beat(self, edge: deploy_pb2_grpc.EdgeServiceStub) -> None:
        try:
            answer: deploy_pb2.EdgeHeartbeatResponse = await edge.Heartbeat(
                self._heartbeat(), timeout=self.config.call_timeout_s, metadata=self._auth()
            )
        except aio.AioRpcError as error:
            log.warning(
                "server %s: heartbeat not taken (%s: %s)",
                self.config.server_id,
                error.code().name,
                error.details(),
            )
            if error.code() == grpc.StatusCode.NOT_FOUND:  # deploy-svc lost us: register again
                await self._register(edge, asyncio.Event())
            elif error.code() == grpc.StatusCode.UNAVAILABLE:
                # Only a link that is down says the stream is likely dead too. A slow answer
                # (DEADLINE_EXCEEDED) means a busy deploy-svc: reopening a thousand streams at it
                # was a reconnect storm in the 1,000-agent bench.
                self._failed_beats += 1
                if self._failed_beats >= DEAD_STREAM_AFTER_FAILED_BEATS and self._stream is not None:
                    self._failed_beats = 0
                    self._stream.cancel()  # a stream on a half-open link would wait forever
            return
        self._failed_beats = 0
        if answer.heartbeat_interval_s > 0:
            self._heartbeat_s = answer.heartbeat_interval_s
        for deployment_id in answer.cancelled_deployment_ids:
            await self._cancel(deployment_id, "a heartbeat answer")

    def _heartbeat(self) -> deploy_pb2.EdgeHeartbeat:
        return deploy_pb2.EdgeHeartbeat(
            server_id=self.config.server_id,
            running=running_to_proto(self._served.values()),
            free_disk_bytes=_free_disk(self.home),
            platform=self.config.resolved_platform,
            edge_version=edge_version(),
            active_deployment_id=self._current[0] if self._current is not None else "",
        )

    async def _assignments(self, edge: deploy_pb2_grpc.EdgeServiceStub) -> None:
        """Follow the assignment stream forever, reconnecting with capped exponential backoff (from the
        start again after a stream that lived a while, or brought an assignment)."""
        wait = self.config.reconnect_initial_s
        request = deploy_pb2.AssignmentsRequest(server_id=self.config.server_id)
        loop = asyncio.get_running_loop()
        while True:
            opened = loop.time()
            call = edge.StreamAssignments(request, metadata=self._auth())
            self._stream = call
            try:
                async for assignment in call:
                    wait = self.config.reconnect_initial_s  # the link works again: start backoff over
                    await self._take(assignment)
                reason = "deploy-svc ended the assignment stream"
            except aio.AioRpcError as error:
                reason = f"the assignment stream broke ({error.code().name}: {error.details()})"
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the agent stops
                reason = "heartbeats fail, so the assignment stream is presumed dead (a half-open link)"
            except Exception as error:  # never give up on the stream; say what happened
                log.exception("server %s: the assignment stream failed", self.config.server_id)
                reason = f"the assignment stream failed ({type(error).__name__}: {error})"
            finally:
                self._stream = None
                call.cancel()
            if loop.time() - opened >= self.config.reconnect_max_s:
                wait = self.config.reconnect_initial_s
            self.reconnects += 1
            log.warning(
                "server %s: %s; reconnecting in %.1f s (reconnect #%d)",
                self.config.server_id,
                reason,
                wait,
                self.reconnects,
            )
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.config.reconnect_max_s)

    async def _take(self, assignment: deploy_pb2.Assignment) -> None:
        if assignment.cancelled:
            await self._cancel(assignment.deployment_id, "the assignment stream")
            return
        key = (assignment.deployment_id, assignment.attempt)
        if key in self._seen or assignment.deployment_id in self._cancelled:
            return
        self._seen.add(key)
        self._queue.put_nowait(assignment)

    async def _installs(self, installer: Installer) -> None:
        while True:
            assignment = await self._queue.get()
            if assignment.deployment_id in self._cancelled:
                continue
            task = asyncio.create_task(installer.install(assignment))
            self._current = (assignment.deployment_id, task)
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:  # the agent stops: the install stops with it
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise
            finally:
                self._current = None
            if not task.cancelled() and (error := task.exception()) is not None:
                log.error(
                    "server %s: install of %s broke: %r",
                    self.config.server_id,
                    assignment.deployment_id,
                    error,
                )

    async def _cancel(self, deployment_id: str, source: str) -> None:
        if deployment_id in self._cancelled:
            return
        self._cancelled.add(deployment_id)
        if self._current is not None and self._current[0] == deployment_id:
            await self._abort_current(f"deployment {deployment_id} was cancelled ({source})")

    async def _abort_current(self, why: str) -> None:
        current = self._current
        if current is None or current[1].done():
            return
        log.info("server %s: aborting the install in progress: %s", self.config.server_id, why)
        current[1].cancel()
        await asyncio.gather(current[1], return_exceptions=True)

    def _auth(self) -> tuple[tuple[str, str]]:
        return bearer_metadata(self.config.token)

    @asynccontextmanager
    async def _connections(
        self,
    ) -> AsyncIterator[
        tuple[deploy_pb2_grpc.EdgeServiceStub, registry_pb2_grpc.RegistryServiceStub, aiohttp.ClientSession]
    ]:
        async with AsyncExitStack() as stack:
            tls = self.config.tls or TlsSettings.from_environ({})
            deploy = self._given_deploy
            if deploy is None:
                deploy = await stack.enter_async_context(tls.grpc_channel(self.config.deploy_target))
            registry = self._given_registry
            if registry is None:
                registry = await stack.enter_async_context(tls.grpc_channel(self.config.registry_target))
            http = self._given_http
            if http is None:
                connector = aiohttp.TCPConnector(ssl=https_context(self.config.ca_file) or True)
                http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            yield (
                deploy_pb2_grpc.EdgeServiceStub(deploy),
                registry_pb2_grpc.RegistryServiceStub(registry),
                http,
            )


def _free_disk(home: VersionsHome) -> int:
    try:
        return shutil.disk_usage(home.home).free
    except OSError:
        return 0


def served_versions(agent: EdgeAgent) -> Mapping[str, str]:
    """ai_module → version_id of what the agent serves (for tests and status lines)."""
    return {module: model.version_id for module, model in agent.running().items()}
