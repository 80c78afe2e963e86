"""deploy-svc's commands: load the aggregate from the store, let the domain decide, append at the
version read. A ConcurrencyConflict (another command appended meanwhile) is retried on fresh state, as
the domain decides again; the same holds for the conductor, which acts through these commands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from modelyard_deploy.app.decisions import A, AggregateStream, decide_and_append
from modelyard_deploy.app.ports import DeployReads
from modelyard_deploy.app.release_rollbacks import release_rollback_id, release_rollback_spec
from modelyard_deploy.app.rollout_request import RolloutRequest, rollout_spec
from modelyard_deploy.app.targets import check_compatible, deployable_version, target_servers
from modelyard_deploy.domain import deployment as deployments
from modelyard_deploy.domain import edge_server as edges
from modelyard_deploy.domain import rollout_decisions as rollouts
from modelyard_deploy.domain.deployment import Deployment, DeploymentSpec, Outcome
from modelyard_deploy.domain.deployment_reports import AgentReport, report
from modelyard_deploy.domain.edge_server import EdgeFacts, EdgeServer
from modelyard_deploy.domain.rollout import Rollout, RolloutSpec, wave_members
from modelyard_deploy.domain.rollout_deployments import rollback_deployment_id
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_events.envelope import DomainEvent
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.deploy import (
    DEPLOYMENT_STREAM,
    EDGE_SERVER_STREAM,
    ROLLOUT_STREAM,
    RunningModel,
    edge_server_stream_id,
    wave_deployment_id,
)
from modelyard_events.schemas.registry import ModelReleased
from modelyard_events.store.ports import EventStore

_RETRIES = 5  # registering: another append to the server's stream meanwhile
_VIEWS_WAIT_S = 10.0  # a release rollback waits this long for the views before it is retried


def utc_now() -> datetime:
    """The service clock (tests pass their own)."""
    return datetime.now(UTC)


class DeployCommands:
    """Every state change of edge servers, deployments and rollouts goes through here (gRPC, the
    registry's events, the conductor)."""

    def __init__(
        self, store: EventStore, reads: DeployReads, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store, self._reads, self._clock = store, reads, clock

    # ---- loading ----

    async def load_deployment(self, deployment_id: str) -> Deployment:
        """The deployment as stored; NotFound when there is none."""
        stored = await self._store.read_stream(deployment_id) if deployment_id else []
        if not stored or stored[0].stream_type != DEPLOYMENT_STREAM:
            raise NotFound(f"deployment {deployment_id!r} does not exist")
        return Deployment.from_events(stored)

    async def load_rollout(self, rollout_id: str) -> Rollout:
        """The rollout as stored; NotFound when there is none."""
        stored = await self._store.read_stream(rollout_id) if rollout_id else []
        if not stored or stored[0].stream_type != ROLLOUT_STREAM:
            raise NotFound(f"rollout {rollout_id!r} does not exist")
        return Rollout.from_events(stored)

    async def load_edge_server(self, org_id: str, server_id: str) -> EdgeServer | None:
        """The registered server, or None."""
        return EdgeServer.from_events(await self._store.read_stream(edge_server_stream_id(org_id, server_id)))

    # ---- rollouts ----

    async def start_rollout(self, request: RolloutRequest, caller: Caller) -> Rollout:
        """Check the version is released and every target server can take it, then start the rollout
        (its waves begin at `scheduled_at`, driven by the conductor)."""
        version = await deployable_version(self._reads, request.version_id, request.org_id)
        org_id = request.org_id or version.org_id
        servers, environment = await target_servers(self._reads, request, version, org_id)
        check_compatible(version, servers)
        server_ids = [s.server_id for s in servers]
        spec = rollout_spec(
            request, version, org_id, server_ids, environment, caller.actor.subject, self._clock()
        )
        return await self._create_rollout(spec, caller)

    async def start_release_rollback(
        self, event: ModelReleased, envelope_id: str, caller: Caller
    ) -> Rollout | None:
        """Carry the registry's release rollback to the fleet: a rollout of kind "rollback" of
        `event.version_id` to the servers of the organization in `event.environment` that serve (or are
        being given) the version it replaces. None when the event is no rollback or no server serves it.

        The rollout id derives from the registry event's id, so a redelivered event decides nothing
        twice. The version was released before and the registry released it again: it is not checked
        against the views, which may not have applied this very event yet.
        """
        replaced = event.replaces_version_id
        if not event.rollback or not replaced:
            return None
        rollout_id = release_rollback_id(envelope_id)
        with contextlib.suppress(NotFound):
            return await self.load_rollout(rollout_id)
        # The servers are chosen from the views, which another runner writes: they must first hold
        # everything this log held now (a deployment completed just before the registry's event is
        # in the log, its switch perhaps not yet in the views). TimeoutError is transient to the
        # runner: the event is tried again after a backoff, never skipped.
        if not await self._reads.caught_up(_VIEWS_WAIT_S):
            raise TimeoutError(f"deploy-svc's views are more than {_VIEWS_WAIT_S:.0f} s behind its log")
        serving = await self._reads.servers_serving(event.org_id, event.ai_module, replaced)
        servers = [s.server_id for s in serving if s.environment == event.environment]
        if not servers:
            return None
        spec = release_rollback_spec(event, rollout_id, servers, self._clock())
        return await self._create_rollout(spec, caller)

    async def cancel_rollout(self, rollout_id: str, reason: str, caller: Caller) -> Rollout:
        """Stop the rollout and cancel its unfinished deployments (the conductor sweeps up any it
        creates meanwhile)."""
        rollout = await self.load_rollout(rollout_id)
        candidates = await self._rollout_deployments(rollout)
        outcomes = {d.server_id: d.outcome for d in candidates if d.wave is not None}
        cancelled = await self._decide(
            AggregateStream(ROLLOUT_STREAM, rollout_id),
            self.load_rollout,
            lambda r: rollouts.cancel_rollout(r, reason, outcomes),
            caller,
        )
        why = f"{rollout.describe()} was cancelled" + (f": {reason}" if reason else "")
        for deployment in candidates:
            if deployment.outcome == "open":
                await self._cancel_quietly(deployment.deployment_id, why, caller)
        return cancelled

    async def rollback_rollout(self, rollout_id: str, reason: str, caller: Caller) -> Rollout:
        """Ask to put the servers the rollout changed back to their previous version (the conductor
        creates the rollback deployments)."""
        return await self._decide(
            AggregateStream(ROLLOUT_STREAM, rollout_id),
            self.load_rollout,
            lambda r: rollouts.request_rollback(r, reason),
            caller,
        )

    async def advance_rollout(
        self,
        rollout_id: str,
        outcomes: Mapping[str, Outcome],
        caller: Caller,
        rollback_outcomes: Mapping[str, Outcome] | None = None,
    ) -> Rollout:
        """The conductor's step: next_step on fresh state (see domain.rollout.next_step)."""
        return await self._decide(
            AggregateStream(ROLLOUT_STREAM, rollout_id),
            self.load_rollout,
            lambda r: rollouts.next_step(r, outcomes, self._clock(), rollback_outcomes),
            caller,
        )

    # ---- deployments ----

    async def create_deployment(self, spec: DeploymentSpec, caller: Caller) -> tuple[Deployment, bool]:
        """(the deployment, whether this call created it): a deployment that exists already is returned
        as it is (its id is derived from what it is for, see wave_deployment_id)."""
        events = deployments.create_deployment(spec)
        try:
            recorded = await self._store.append(
                DEPLOYMENT_STREAM, spec.deployment_id, 0, events, caller.context_for(spec.org_id)
            )
        except ConcurrencyConflict:
            return await self.load_deployment(spec.deployment_id), False
        return Deployment.from_events(recorded), True

    async def cancel_deployment(self, deployment_id: str, reason: str, caller: Caller) -> Deployment:
        """Cancel a deployment that has not completed, even while its agent is offline."""
        return await self._decide(
            AggregateStream(DEPLOYMENT_STREAM, deployment_id),
            self.load_deployment,
            lambda d: deployments.cancel(d, reason),
            caller,
        )

    async def retry_deployment(
        self, deployment_id: str, reason: str, caller: Caller, deadline_s: float | None = None
    ) -> Deployment:
        """An operator's retry of a failed deployment (even with retries exhausted or past its deadline).

        The new attempt's deadline is now + `deadline_s`; None: the deployment's own span (deadline_at −
        scheduled_at).
        """

        def decide(d: Deployment) -> list[DomainEvent]:
            span = deadline_s or (d.deadline_at - d.scheduled_at).total_seconds()
            return deployments.retry(d, False, reason, self._clock(), span)

        return await self._decide(
            AggregateStream(DEPLOYMENT_STREAM, deployment_id), self.load_deployment, decide, caller
        )

    async def retry_due_deployment(self, deployment_id: str, caller: Caller) -> Deployment:
        """The conductor's automatic retry of a failure whose backoff is over."""

        def decide(d: Deployment) -> list[DomainEvent]:
            why = f"automatic retry {d.retry_count + 1} of {d.max_retries} after: {d.error_message}"
            return deployments.retry(d, True, truncate_text(why), self._clock(), 0)

        return await self._decide(
            AggregateStream(DEPLOYMENT_STREAM, deployment_id), self.load_deployment, decide, caller
        )

    async def fail_deployment(
        self, deployment_id: str, reason: str, retryable: bool, caller: Caller
    ) -> Deployment:
        """The conductor fails an unfinished deployment (deadline passed, agent silent)."""
        return await self._decide(
            AggregateStream(DEPLOYMENT_STREAM, deployment_id),
            self.load_deployment,
            lambda d: deployments.fail(d, reason, self._clock(), retryable),
            caller,
        )

    async def report_progress(
        self, org_id: str, server_id: str, deployment_id: str, agent: AgentReport, caller: Caller
    ) -> tuple[Deployment, bool]:
        """(the deployment, whether it was cancelled) after an agent's report. A deployment of another
        server or organization is NotFound, worded as for one that does not exist. On completed, the
        server's stream records that it now serves the version."""
        stream = AggregateStream(DEPLOYMENT_STREAM, deployment_id)

        async def load_own(deployment_id: str) -> Deployment:
            with contextlib.suppress(NotFound):
                d = await self.load_deployment(deployment_id)
                if d.org_id == org_id and d.server_id == server_id:
                    return d
            raise NotFound(f"server {server_id} has no deployment {deployment_id!r}")

        decided: list[DomainEvent] = []

        def decide(d: Deployment) -> list[DomainEvent]:
            decided[:] = report(d, agent, self._clock())
            return decided

        after = await self._decide(stream, load_own, decide, caller)
        if after.status == "completed" and decided:
            await self._record_switch(after, caller)
        return after, after.status == "cancelled"

    # ---- edge servers ----

    async def register_edge(
        self, org_id: str, facts: EdgeFacts, caller: Caller, running: Sequence[RunningModel] | None = None
    ) -> EdgeServer:
        """Register (or update) a server; with `running`, also record what it serves, in one append."""
        stream_id = edge_server_stream_id(org_id, facts.server_id)
        for attempt in range(1, _RETRIES + 1):
            server = await self.load_edge_server(org_id, facts.server_id)
            events: list[DomainEvent] = list(edges.register(server, org_id, facts))
            now = self._clock()
            after = server
            for event in events:
                after = edges.fold(after, event, now)
            if running is not None:
                events += edges.report_running(after, running, now)
            if not events:
                assert server is not None  # registering anew always decides an event
                return server
            version = server.stream_version if server else 0
            try:
                await self._store.append(
                    EDGE_SERVER_STREAM, stream_id, version, events, caller.context_for(org_id)
                )
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue
            registered = await self.load_edge_server(org_id, facts.server_id)
            assert registered is not None
            return registered
        raise AssertionError("unreachable")

    async def report_running(
        self,
        org_id: str,
        server_id: str,
        running: Sequence[RunningModel],
        caller: Caller,
        deployment_id: str | None = None,
    ) -> EdgeServer:
        """Record what a registered server serves (EdgeModelSwitched per module that changed)."""

        async def load(_: str) -> EdgeServer:
            server = await self.load_edge_server(org_id, server_id)
            if server is None:
                raise NotFound(f"edge server {server_id} is not registered in organization {org_id}")
            return server

        return await self._decide(
            AggregateStream(EDGE_SERVER_STREAM, edge_server_stream_id(org_id, server_id)),
            load,
            lambda s: list(edges.report_running(s, running, self._clock(), deployment_id)),
            caller,
        )

    # ---- machinery ----

    async def _decide(
        self,
        stream: AggregateStream,
        load: Callable[[str], Awaitable[A]],
        decide: Callable[[A], Sequence[DomainEvent]],
        caller: Caller,
    ) -> A:
        return await decide_and_append(self._store, stream, load, decide, caller)

    async def _create_rollout(self, spec: RolloutSpec, caller: Caller) -> Rollout:
        events = rollouts.start_rollout(spec)
        try:
            recorded = await self._store.append(
                ROLLOUT_STREAM, spec.rollout_id, 0, events, caller.context_for(spec.org_id)
            )
        except ConcurrencyConflict:
            return await self.load_rollout(spec.rollout_id)  # the same request (or event) came twice
        return Rollout.from_events(recorded)

    async def _record_switch(self, deployment: Deployment, caller: Caller) -> None:
        server = await self.load_edge_server(deployment.org_id, deployment.server_id)
        if server is None:
            return
        running = [
            RunningModel(ai_module=m, version_id=v)
            for m, v in server.running.items()
            if m != deployment.ai_module
        ]
        running.append(
            RunningModel(
                ai_module=deployment.ai_module,
                version_id=deployment.version_id,
                semantic_version=deployment.semantic_version,
            )
        )
        await self.report_running(
            deployment.org_id, deployment.server_id, running, caller, deployment.deployment_id
        )

    async def _rollout_deployments(self, rollout: Rollout) -> list[Deployment]:
        """Every deployment the rollout may have made so far, read from the store (not the views, so
        one created a moment ago is not missed)."""
        ids = [
            wave_deployment_id(rollout.rollout_id, wave, server)
            for wave in range(rollout.current_wave + 1)
            for server in wave_members(rollout, wave)
        ]
        ids += [rollback_deployment_id(rollout.rollout_id, s) for s in rollout.targets]
        found = await self._store.read_streams(ids)
        return [Deployment.from_events(stored) for stored in found.values() if stored]

    async def _cancel_quietly(self, deployment_id: str, reason: str, caller: Caller) -> None:
        with contextlib.suppress(IllegalTransition):  # it finished meanwhile
            await self.cancel_deployment(deployment_id, reason, caller)
