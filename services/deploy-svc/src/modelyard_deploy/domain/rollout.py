"""The Rollout aggregate: one version carried to many servers in waves, halting (and rolling back)
when a wave fails too often.

scheduled → running (wave 0, 1, …) → completed
                    ↘ halted                      (a wave over its threshold, no rollback)
                    ↘ rolling_back → rolled_back  (over the threshold with rollback_on_failure, or an
                                                   operator's request after running, halting or completing)
scheduled | running | rolling_back → cancelled    (an operator)

The rollout never touches a deployment's stream: its decisions (domain.rollout_decisions) read the
outcomes of the deployments the conductor creates for each wave and return the rollout's own events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from modelyard_events.domain_errors import NotFound
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.deploy import (
    DEPLOY_EVENTS,
    HealthLimits,
    RolloutCancelled,
    RolloutFinished,
    RolloutHalted,
    RolloutKind,
    RolloutOutcome,
    RolloutRollbackRequested,
    RolloutStarted,
    RolloutTargetsAdded,
    RolloutWaveFinished,
    RolloutWaveStarted,
)

RolloutState = Literal[
    "scheduled", "running", "rolling_back", "completed", "halted", "rolled_back", "cancelled"
]
FINISHED_STATES: frozenset[RolloutState] = frozenset({"completed", "halted", "rolled_back", "cancelled"})
_STATE_AFTER_OUTCOME: dict[RolloutOutcome, RolloutState] = {
    "completed": "completed",
    "halted": "halted",
    "rolled_back": "rolled_back",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class RolloutSpec:
    """What a new rollout is: checked by `start_rollout`, which also plans its waves."""

    rollout_id: str
    org_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int
    server_ids: Sequence[str]  # in the order the waves take them
    scheduled_at: datetime
    deadline_s: int
    max_retries: int
    backoff_base_s: float
    health: HealthLimits
    started_by: str
    failure_threshold: float = 0.0
    rollback_on_failure: bool = True
    wave_sizes: Sequence[int] | None = None  # None: a canary of one, then the rest
    environment: str | None = None
    kind: RolloutKind = "deploy"
    reason: str = ""
    release_rollback_of: str | None = None


@dataclass(frozen=True)
class WaveResult:
    """How one finished wave went."""

    wave: int
    completed: int
    failed: int
    cancelled: int
    failure_ratio: float
    passed: bool


@dataclass(frozen=True)
class Rollout:
    """One rollout as its events so far say it is; `current_wave` is -1 before the first wave."""

    rollout_id: str
    org_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int
    environment: str | None
    server_count: int
    wave_sizes: tuple[int, ...]
    failure_threshold: float
    rollback_on_failure: bool
    kind: RolloutKind
    scheduled_at: datetime
    deadline_s: int
    max_retries: int
    backoff_base_s: float
    health: HealthLimits
    started_by: str
    reason: str
    release_rollback_of: str | None
    created_at: datetime
    targets: tuple[str, ...] = ()
    state: RolloutState = "scheduled"
    current_wave: int = -1
    wave_started_at: tuple[datetime, ...] = ()
    wave_results: tuple[WaveResult, ...] = ()
    halt_reason: str = ""
    rollback_reason: str = ""
    outcome: RolloutOutcome | None = None
    finished_at: datetime | None = None
    stream_version: int = 1
    _index: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_events(cls, envelopes: Iterable[EventEnvelope]) -> Rollout:
        """The rollout after its stored events; NotFound for an empty or foreign stream."""
        rollout: Rollout | None = None
        for envelope in envelopes:
            event = DEPLOY_EVENTS.decode(envelope)
            if rollout is None:
                if not isinstance(event, RolloutStarted):
                    raise NotFound(f"rollout {envelope.stream_id} does not exist")
                rollout = cls.started(event, envelope.occurred_at)
            else:
                rollout = rollout.apply(event, envelope.occurred_at)
        if rollout is None:
            raise NotFound("rollout does not exist")
        return rollout

    @classmethod
    def started(cls, event: RolloutStarted, at: datetime) -> Rollout:
        """The state right after RolloutStarted (its targets follow)."""
        fields = event.model_dump(exclude={"health", "wave_sizes"})
        return cls(**fields, health=event.health, wave_sizes=tuple(event.wave_sizes), created_at=at)

    def apply(self, event: DomainEvent, at: datetime) -> Rollout:
        """The rollout after `event`, recorded at `at`."""
        moved = replace(self, stream_version=self.stream_version + 1)
        if isinstance(event, RolloutTargetsAdded):
            targets = self.targets[: event.first_index] + tuple(event.server_ids)
            return replace(moved, targets=targets, _index={s: i for i, s in enumerate(targets)})
        if isinstance(event, RolloutWaveStarted):
            starts = (*self.wave_started_at, event.started_at)
            return replace(moved, state="running", current_wave=event.wave, wave_started_at=starts)
        if isinstance(event, RolloutWaveFinished):
            result = WaveResult(
                event.wave, event.completed, event.failed, event.cancelled, event.failure_ratio, event.passed
            )
            return replace(moved, wave_results=(*self.wave_results, result))
        if isinstance(event, RolloutHalted):
            state: RolloutState = "rolling_back" if event.rolling_back else "halted"
            return replace(moved, state=state, halt_reason=event.reason)
        if isinstance(event, RolloutRollbackRequested):
            return replace(moved, state="rolling_back", rollback_reason=event.reason, finished_at=None)
        if isinstance(event, RolloutCancelled):
            return replace(moved, state="cancelled")
        if isinstance(event, RolloutFinished):
            state = _STATE_AFTER_OUTCOME[event.outcome]
            return replace(moved, state=state, outcome=event.outcome, finished_at=at)
        return moved

    def apply_envelopes(self, envelopes: Iterable[EventEnvelope]) -> Rollout:
        """The rollout after events just recorded."""
        rollout = self
        for envelope in envelopes:
            rollout = rollout.apply(DEPLOY_EVENTS.decode(envelope), envelope.occurred_at)
        return rollout

    @property
    def finished(self) -> bool:
        """Completed, halted (without rollback), rolled back or cancelled."""
        return self.state in FINISHED_STATES

    def wave_of(self, server_id: str) -> int | None:
        """The wave that takes `server_id`, or None when it is not a target."""
        index = self._index.get(server_id)
        if index is None:
            return None
        end = 0
        for wave, size in enumerate(self.wave_sizes):
            end += size
            if index < end:
                return wave
        return None

    def describe(self) -> str:
        """`rollout <id> of <module> <semver>` for messages."""
        return f"rollout {self.rollout_id} of {self.ai_module} {self.semantic_version}"


def wave_members(rollout: Rollout, wave: int) -> tuple[str, ...]:
    """The servers of wave `wave`, in order."""
    if not 0 <= wave < len(rollout.wave_sizes):
        return ()
    first = sum(rollout.wave_sizes[:wave])
    return rollout.targets[first : first + rollout.wave_sizes[wave]]
