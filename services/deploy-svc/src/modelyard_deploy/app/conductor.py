"""The conductor: drives rollouts wave by wave and keeps every open deployment moving or ending.

A pass (one at a time across replicas, and only once the views have applied all of deploy-svc's log):

1. each unfinished rollout: start its wave when due and create that wave's deployments; decide
   `next_step` from their outcomes (next wave, halt, finish); when it rolls back, create, for every
   server the rollout completed, a deployment of the version it ran before;
2. each open deployment: cancel it when its rollout was cancelled or halted (so a halted wave's
   unfinished deployments end in the pass that halted it), or its version was deprecated; fail it
   past its deadline or when its agent has gone silent mid-install; retry a failure
   whose backoff is over.

Nothing a pass decides depends on memory of an earlier pass: deployment ids derive from (rollout, wave,
server), so a pass repeated after a crash creates nothing twice. Passes run when woken (the views
announce a change) and at least every `sweep_every_s`, which is what notices deadlines and silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.app.deployment_sweep import DeploymentSweep
from modelyard_deploy.app.pass_lock import PassLock
from modelyard_deploy.app.ports import DeploymentLine, DeployReads, KnownVersion
from modelyard_deploy.domain.deployment import Deployment, Outcome
from modelyard_deploy.domain.rollout import Rollout, wave_members
from modelyard_deploy.domain.rollout_deployments import rollback_deployment, wave_deployment
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import DomainError
from modelyard_events.envelope import Actor
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.deploy import wave_deployment_id

log = logging.getLogger(__name__)
CONDUCTOR = Caller(Actor(subject="deploy-svc/conductor", roles=("system",)))
LastHeartbeats = Callable[[], Awaitable[Mapping[tuple[str, str], datetime]]]
_STEPS_PER_PASS = 4  # a rollout may start, halt and begin rolling back within one pass
_CREATES_AT_ONCE = 64


@dataclass
class PassResult:
    """What one pass did (`ran` False: another replica held the lock, or the views lagged)."""

    ran: bool = False
    waves_started: int = 0
    deployments_created: int = 0
    rollbacks_created: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    rollouts_finished: int = 0


@dataclass
class _RolloutProgress:
    """A rollout's deployments as this pass knows them: the views' lines plus what it did itself."""

    lines: dict[str, DeploymentLine]  # wave deployments by server
    undo_lines: dict[str, DeploymentLine]  # rollback deployments by server
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    undo_outcomes: dict[str, Outcome] = field(default_factory=dict)


def outcome_of(line: DeploymentLine) -> Outcome:
    """How a rollout counts the deployment: failed only when final."""
    if line.status in ("completed", "cancelled"):
        return line.status
    if line.status == "failed" and line.retry_at is None:
        return "failed"
    return "open"


class Conductor:
    """Runs passes when woken or every `sweep_every_s`."""

    def __init__(
        self,
        reads: DeployReads,
        commands: DeployCommands,
        pass_lock: PassLock,
        clock: Callable[[], datetime],
        silence_timeout_s: float,
        last_heartbeats: LastHeartbeats,
        caught_up_timeout_s: float = 2.0,
    ) -> None:
        self._reads, self._commands, self._pass_lock, self._clock = reads, commands, pass_lock, clock
        self._silence_s, self._last_heartbeats = silence_timeout_s, last_heartbeats
        self._caught_up_timeout_s = caught_up_timeout_s

    async def run(self, stop: asyncio.Event, wake: asyncio.Event, sweep_every_s: float) -> None:
        """Pass after pass until `stop`; a failed pass is logged and the next one tries again."""
        while not stop.is_set():
            wake.clear()
            try:
                await self.run_pass()
            except Exception:
                log.exception("conductor pass failed")
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=sweep_every_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def run_pass(self) -> PassResult:
        """One pass, if no other replica is in one and the views are caught up (else nothing)."""
        async with self._pass_lock() as held:
            if not held or not await self._caught_up():
                return PassResult()
            result = PassResult(ran=True)
            for rollout_id in await self._reads.unfinished_rollout_ids():
                try:
                    await self._advance(rollout_id, result)
                except (DomainError, ConcurrencyConflict):
                    log.exception("conductor: rollout %s not advanced this pass", rollout_id)
            now = self._clock()
            sweep = DeploymentSweep(self._reads, self._commands, CONDUCTOR, now, self._silence_s)
            counts = await sweep.run(await self._last_heartbeats())
            result.failed, result.retried = counts.failed, counts.retried
            result.cancelled += counts.cancelled
            return result

    async def _caught_up(self) -> bool:
        # The views must hold what the log held as the pass begins, not chase a head that a busy fleet
        # moves every few milliseconds (that skipped passes, and so waves, for seconds at a time).
        if await self._reads.caught_up(self._caught_up_timeout_s):
            return True
        log.info("conductor: views behind the log; skipping this pass")
        return False

    # ---- rollouts ----

    async def _advance(self, rollout_id: str, result: PassResult) -> None:
        rollout = await self._commands.load_rollout(rollout_id)
        progress = await self._progress(rollout_id)
        for _ in range(_STEPS_PER_PASS):
            await self._act(rollout, progress, result)
            after = await self._commands.advance_rollout(
                rollout_id, progress.outcomes, CONDUCTOR, progress.undo_outcomes
            )
            if after.stream_version == rollout.stream_version:
                return
            result.waves_started += after.current_wave != rollout.current_wave
            result.rollouts_finished += after.finished
            rollout = after
            if after.finished:
                return

    async def _progress(self, rollout_id: str) -> _RolloutProgress:
        lines = await self._reads.rollout_deployments(rollout_id)
        progress = _RolloutProgress(
            lines={line.server_id: line for line in lines if line.wave is not None},
            undo_lines={line.server_id: line for line in lines if line.wave is None},
        )
        progress.outcomes = {s: outcome_of(line) for s, line in progress.lines.items()}
        progress.undo_outcomes = {s: outcome_of(line) for s, line in progress.undo_lines.items()}
        return progress

    async def _act(self, rollout: Rollout, progress: _RolloutProgress, result: PassResult) -> None:
        if rollout.state == "running":
            await self._create_wave(rollout, progress, result)
        elif rollout.state == "rolling_back":
            await self._create_rollbacks(rollout, progress, result)

    async def _create_wave(self, rollout: Rollout, progress: _RolloutProgress, result: PassResult) -> None:
        """Create the current wave's missing deployments, a batch at a time: concurrent appends share
        the store's round trips, which is what lets one pass start a wave of a thousand servers."""
        wave = rollout.current_wave
        missing = [s for s in wave_members(rollout, wave) if s not in progress.outcomes]
        for first in range(0, len(missing), _CREATES_AT_ONCE):
            batch = missing[first : first + _CREATES_AT_ONCE]
            made = await asyncio.gather(*(self._create_wave_deployment(rollout, wave, s) for s in batch))
            for server_id, (deployment, created) in zip(batch, made, strict=True):
                progress.outcomes[server_id] = deployment.outcome
                result.deployments_created += created

    async def _create_wave_deployment(
        self, rollout: Rollout, wave: int, server_id: str
    ) -> tuple[Deployment, bool]:
        server = await self._reads.server(rollout.org_id, server_id)
        previous = server.running.get(rollout.ai_module) if server else None
        spec = wave_deployment(rollout, wave, server_id, previous)
        return await self._commands.create_deployment(spec, CONDUCTOR)

    async def _create_rollbacks(
        self, rollout: Rollout, progress: _RolloutProgress, result: PassResult
    ) -> None:
        versions: dict[str, KnownVersion | None] = {}
        for server_id in rollout.targets:
            if progress.outcomes.get(server_id) != "completed" or server_id in progress.undo_outcomes:
                continue
            previous_id = await self._previous_version(rollout, server_id, progress)
            if previous_id is None:
                continue  # next_step's reason names it: it keeps the new version
            if previous_id not in versions:
                versions[previous_id] = await self._reads.version(previous_id)
            previous = versions[previous_id]
            if previous is None:
                log.warning(
                    "rollout %s: %s ran %s, unknown to deploy-svc", rollout.rollout_id, server_id, previous_id
                )
                continue
            spec = rollback_deployment(
                rollout,
                server_id,
                previous.version_id,
                previous.semantic_version,
                previous.artifact_sha256,
                previous.artifact_size_bytes,
                self._clock(),
            )
            deployment, created = await self._commands.create_deployment(spec, CONDUCTOR)
            progress.undo_outcomes[server_id] = deployment.outcome
            result.rollbacks_created += created

    async def _previous_version(
        self, rollout: Rollout, server_id: str, progress: _RolloutProgress
    ) -> str | None:
        line = progress.lines.get(server_id)
        if line is not None:
            return line.previous_version_id
        wave = rollout.wave_of(server_id)
        if wave is None:
            return None
        deployment = await self._commands.load_deployment(_wave_id(rollout, wave, server_id))
        return deployment.previous_version_id


def _wave_id(rollout: Rollout, wave: int | None, server_id: str) -> str:
    return wave_deployment_id(rollout.rollout_id, wave or 0, server_id)
