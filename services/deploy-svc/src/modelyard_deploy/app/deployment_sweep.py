"""The conductor's sweep over open deployments: nothing stays in progress forever.

Each open deployment is looked at once per pass, in this order (the first that applies acts):
its rollout was cancelled or halted → cancel; its version was deprecated (a deploy, not a rollback to
it) → cancel; past its deadline → fail, final; downloading or installing while its agent has been
silent (no heartbeat, no report) longer than the silence timeout → fail, retried with backoff; failed
with its backoff over → retry. A deployment that moved on meanwhile (IllegalTransition) is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelyard_deploy.app.commands import DeployCommands
from modelyard_deploy.app.ports import DeploymentLine, DeployReads, KnownVersion
from modelyard_deploy.domain.rollout import Rollout
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import DomainError, IllegalTransition, NotFound
from modelyard_events.errors import ConcurrencyConflict

log = logging.getLogger(__name__)
_ABANDONING_STATES = frozenset({"halted", "rolling_back", "rolled_back"})


@dataclass
class SweepCounts:
    """What a sweep did."""

    failed: int = 0
    retried: int = 0
    cancelled: int = 0


class DeploymentSweep:
    """One pass over the open deployments at `now` (caches rollouts and versions for the pass)."""

    def __init__(
        self, reads: DeployReads, commands: DeployCommands, caller: Caller, now: datetime, silence_s: float
    ) -> None:
        self._reads, self._commands, self._caller, self._now, self._silence_s = (
            reads, commands, caller, now, silence_s,
        )  # fmt: skip
        self._rollouts: dict[str, Rollout | None] = {}
        self._versions: dict[str, KnownVersion | None] = {}
        self.counts = SweepCounts()

    async def run(self, heartbeats: Mapping[tuple[str, str], datetime]) -> SweepCounts:
        """Tend every open deployment; errors of one are logged and the others still tended."""
        for line in await self._reads.open_deployments():
            try:
                await self._tend(line, heartbeats)
            except IllegalTransition as moved_on:  # it finished after the views' snapshot: nothing to do
                log.info("conductor: deployment %s moved on: %s", line.deployment_id, moved_on.message)
            except (DomainError, ConcurrencyConflict):
                log.exception("conductor: deployment %s not tended this pass", line.deployment_id)
        return self.counts

    async def _tend(self, line: DeploymentLine, heartbeats: Mapping[tuple[str, str], datetime]) -> None:
        reason = await self._abandoned(line)
        if reason:
            await self._commands.cancel_deployment(line.deployment_id, reason, self._caller)
            self.counts.cancelled += 1
        elif line.status in ("pending", "downloading", "installing") and self._now >= line.deadline_at:
            why = f"deadline passed at {_utc(line.deadline_at)} while {line.status}"
            await self._commands.fail_deployment(line.deployment_id, why, False, self._caller)
            self.counts.failed += 1
        elif (
            line.status in ("downloading", "installing")
            and self._silent_s(line, heartbeats) > self._silence_s
        ):
            why = f"agent silent for {int(self._silent_s(line, heartbeats))} s while {line.status}"
            await self._commands.fail_deployment(line.deployment_id, why, True, self._caller)
            self.counts.failed += 1
        elif line.status == "failed" and line.retry_at is not None and line.retry_at <= self._now:
            await self._commands.retry_due_deployment(line.deployment_id, self._caller)
            self.counts.retried += 1

    async def _abandoned(self, line: DeploymentLine) -> str | None:
        """Why the deployment should no longer run, or None."""
        rollout = await self._rollout(line.rollout_id) if line.rollout_id else None
        if rollout is not None and rollout.state == "cancelled":
            return f"{rollout.describe()} was cancelled"
        if rollout is not None and line.wave is not None and rollout.state in _ABANDONING_STATES:
            return f"{rollout.describe()} halted: {rollout.halt_reason or rollout.rollback_reason}"
        if line.kind == "deploy":
            version = await self._version(line.version_id)
            if version is not None and version.status == "deprecated":
                v = version
                return f"version {v.semantic_version} ({v.version_id}) of {v.ai_module} was deprecated"
        return None

    def _silent_s(self, line: DeploymentLine, heartbeats: Mapping[tuple[str, str], datetime]) -> float:
        heard = heartbeats.get((line.org_id, line.server_id))
        last = max(heard, line.updated_at) if heard else line.updated_at
        return (self._now - last).total_seconds()

    async def _rollout(self, rollout_id: str) -> Rollout | None:
        if rollout_id not in self._rollouts:
            try:
                self._rollouts[rollout_id] = await self._commands.load_rollout(rollout_id)
            except NotFound:
                self._rollouts[rollout_id] = None
        return self._rollouts[rollout_id]

    async def _version(self, version_id: str) -> KnownVersion | None:
        if version_id not in self._versions:
            self._versions[version_id] = await self._reads.version(version_id)
        return self._versions[version_id]


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
