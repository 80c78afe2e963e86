"""What a rollout decides: its start (targets in wave order), its next step from the outcomes of its
deployments (next wave, halt, rollback finished), an operator's cancel and rollback request.

Each function takes a Rollout (domain.rollout) and returns the events to append, or raises a
DomainError naming the state and what it allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from modelyard_deploy.domain.deployment import Outcome
from modelyard_deploy.domain.edge_server import check_server_id
from modelyard_deploy.domain.rollout import Rollout, RolloutSpec, wave_members
from modelyard_deploy.domain.waves import plan_waves
from modelyard_events.domain_errors import IllegalTransition, InvalidFields
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.deploy import (
    MAX_ROLLOUT_SERVERS,
    NAMED_FAILURES,
    TARGETS_PER_EVENT,
    RolloutCancelled,
    RolloutFinished,
    RolloutHalted,
    RolloutRollbackRequested,
    RolloutStarted,
    RolloutTargetsAdded,
    RolloutWaveFinished,
    RolloutWaveStarted,
)


def start_rollout(spec: RolloutSpec) -> list[DomainEvent]:
    """RolloutStarted and its targets in chunks of TARGETS_PER_EVENT, in wave order."""
    _check_spec(spec)
    sizes = plan_waves(len(spec.server_ids), spec.wave_sizes)
    started = RolloutStarted(
        rollout_id=spec.rollout_id,
        org_id=spec.org_id,
        version_id=spec.version_id,
        ai_module=spec.ai_module,
        semantic_version=spec.semantic_version,
        artifact_sha256=spec.artifact_sha256,
        artifact_size_bytes=spec.artifact_size_bytes,
        environment=spec.environment,
        server_count=len(spec.server_ids),
        wave_sizes=sizes,
        failure_threshold=spec.failure_threshold,
        rollback_on_failure=spec.rollback_on_failure,
        kind=spec.kind,
        scheduled_at=spec.scheduled_at,
        deadline_s=spec.deadline_s,
        max_retries=spec.max_retries,
        backoff_base_s=spec.backoff_base_s,
        health=spec.health,
        started_by=spec.started_by,
        reason=spec.reason,
        release_rollback_of=spec.release_rollback_of,
    )
    servers = list(spec.server_ids)
    chunks: list[DomainEvent] = [
        RolloutTargetsAdded(
            rollout_id=spec.rollout_id,
            first_index=first,
            server_ids=servers[first : first + TARGETS_PER_EVENT],
        )
        for first in range(0, len(servers), TARGETS_PER_EVENT)
    ]
    return [started, *chunks]


def next_step(
    rollout: Rollout,
    outcomes: Mapping[str, Outcome],
    now: datetime,
    rollback_outcomes: Mapping[str, Outcome] | None = None,
) -> list[DomainEvent]:
    """What the rollout does next, given how its deployments went.

    `outcomes` maps each target server to the outcome of its deployment in this rollout (a server with
    no deployment yet is "open"); `rollback_outcomes` maps each server that got a rollback deployment
    to that deployment's outcome. Returns [] when nothing is to be decided yet.
    """
    if rollout.state == "scheduled":
        return [_wave_started(rollout, 0, now)] if now >= rollout.scheduled_at else []
    if rollout.state == "running":
        return _running_step(rollout, outcomes, now)
    if rollout.state == "rolling_back":
        return _rolling_back_step(rollout, outcomes, rollback_outcomes or {})
    return []


def cancel_rollout(
    rollout: Rollout, reason: str, outcomes: Mapping[str, Outcome] | None = None
) -> list[DomainEvent]:
    """Stop the rollout: no further wave starts (the conductor cancels its unfinished deployments).

    `outcomes` (as for next_step) only feeds the counts of RolloutFinished.
    """
    if rollout.finished:
        raise IllegalTransition(
            f"{rollout.describe()} is {rollout.state}; only scheduled, running or rolling back rollouts "
            "can be cancelled"
        )
    counts = _counts(rollout.targets, outcomes or {})
    return [
        RolloutCancelled(rollout_id=rollout.rollout_id, reason=reason),
        RolloutFinished(
            rollout_id=rollout.rollout_id,
            outcome="cancelled",
            completed_servers=counts["completed"],
            failed_servers=counts["failed"],
            reason=reason,
        ),
    ]


def request_rollback(rollout: Rollout, reason: str) -> list[DomainEvent]:
    """Put the servers the rollout changed back to what they ran before (running, halted, completed)."""
    if rollout.state not in ("running", "halted", "completed"):
        hint = {
            "scheduled": "nothing was deployed yet: cancel it instead",
            "rolling_back": "it is already rolling back",
            "rolled_back": "it was already rolled back",
            "cancelled": "it was cancelled",
        }[rollout.state]
        raise IllegalTransition(
            f"{rollout.describe()} is {rollout.state}; {hint} (running, halted or completed rollouts can "
            "be rolled back)"
        )
    return [RolloutRollbackRequested(rollout_id=rollout.rollout_id, reason=reason)]


def _running_step(rollout: Rollout, outcomes: Mapping[str, Outcome], now: datetime) -> list[DomainEvent]:
    wave = rollout.current_wave
    members = wave_members(rollout, wave)
    counts = _counts(members, outcomes)
    ratio = counts["failed"] / len(members)
    finished = _wave_finished(rollout, wave, counts, ratio, passed=ratio <= rollout.failure_threshold)
    if ratio > rollout.failure_threshold:
        return [finished, *_halt(rollout, members, outcomes, counts, ratio)]
    if counts["open"]:
        return []
    if wave + 1 < len(rollout.wave_sizes):
        return [finished, _wave_started(rollout, wave + 1, now)]
    total = _counts(rollout.targets, outcomes)
    return [
        finished,
        RolloutFinished(
            rollout_id=rollout.rollout_id,
            outcome="completed",
            completed_servers=total["completed"],
            failed_servers=total["failed"],
            reason=f"every wave passed; {total['completed']} of {rollout.server_count} servers completed",
        ),
    ]


def _halt(
    rollout: Rollout,
    members: Sequence[str],
    outcomes: Mapping[str, Outcome],
    counts: Mapping[str, int],
    ratio: float,
) -> list[DomainEvent]:
    total = _counts(rollout.targets, outcomes)
    rolling_back = rollout.rollback_on_failure and total["completed"] > 0
    failed = [s for s in members if outcomes.get(s) == "failed"]
    reason = (
        f"wave {rollout.current_wave}: {counts['failed']} of {len(members)} deployments failed "
        f"({ratio:.0%}), above the threshold of {rollout.failure_threshold:.0%}"
    )
    halted = RolloutHalted(
        rollout_id=rollout.rollout_id,
        wave=rollout.current_wave,
        failure_ratio=ratio,
        threshold=rollout.failure_threshold,
        reason=reason,
        failed_count=len(failed),
        failed_servers=failed[:NAMED_FAILURES],
        rolling_back=rolling_back,
    )
    if rolling_back:
        return [halted]
    why = (
        "rollback is off" if not rollout.rollback_on_failure else "no server completed, nothing to roll back"
    )
    finished = RolloutFinished(
        rollout_id=rollout.rollout_id,
        outcome="halted",
        completed_servers=total["completed"],
        failed_servers=total["failed"],
        reason=f"{reason}; {why}",
    )
    return [halted, finished]


def _rolling_back_step(
    rollout: Rollout, outcomes: Mapping[str, Outcome], rollback_outcomes: Mapping[str, Outcome]
) -> list[DomainEvent]:
    if any(outcome == "open" for outcome in rollback_outcomes.values()):
        return []
    counts = _counts(list(rollback_outcomes), rollback_outcomes)
    parts = [
        f"rolled back {counts['completed']} of {len(rollback_outcomes)} servers to their previous version"
    ]
    failed = sorted(s for s, o in rollback_outcomes.items() if o != "completed")
    if failed:
        parts.append(f"{len(failed)} did not roll back: {_names(failed)}")
    kept = [s for s in rollout.targets if outcomes.get(s) == "completed" and s not in rollback_outcomes]
    if kept:
        parts.append(
            f"{len(kept)} had no previous version and keep {rollout.semantic_version}: {_names(kept)}"
        )
    return [
        RolloutFinished(
            rollout_id=rollout.rollout_id,
            outcome="rolled_back",
            completed_servers=counts["completed"],
            failed_servers=counts["failed"],
            reason="; ".join(parts),
        )
    ]


def _wave_started(rollout: Rollout, wave: int, now: datetime) -> RolloutWaveStarted:
    return RolloutWaveStarted(
        rollout_id=rollout.rollout_id,
        wave=wave,
        first_index=sum(rollout.wave_sizes[:wave]),
        count=rollout.wave_sizes[wave],
        started_at=now,
    )


def _wave_finished(
    rollout: Rollout, wave: int, counts: Mapping[str, int], ratio: float, passed: bool
) -> RolloutWaveFinished:
    return RolloutWaveFinished(
        rollout_id=rollout.rollout_id,
        wave=wave,
        completed=counts["completed"],
        failed=counts["failed"],
        cancelled=counts["cancelled"],
        failure_ratio=ratio,
        passed=passed,
    )


def _counts(servers: Iterable[str], outcomes: Mapping[str, Outcome]) -> dict[str, int]:
    counts = {"completed": 0, "failed": 0, "cancelled": 0, "open": 0}
    for server in servers:
        counts[outcomes.get(server, "open")] += 1
    return counts


def _names(servers: Sequence[str], shown: int = 10) -> str:
    more = f" and {len(servers) - shown} more" if len(servers) > shown else ""
    return ", ".join(servers[:shown]) + more


def _check_spec(spec: RolloutSpec) -> None:
    problems: dict[str, str] = {}
    servers = list(spec.server_ids)
    if len(servers) > MAX_ROLLOUT_SERVERS:
        problems["server_ids"] = f"at most {MAX_ROLLOUT_SERVERS:,} servers per rollout; got {len(servers):,}"
    twice = _twice(servers)
    if twice:
        problems["server_ids"] = f"each server once; listed more than once: {_names(twice)}"
    bad = [s for s in servers if check_server_id(s)]
    if bad:
        problems["server_ids"] = f"not a server id: {_names([repr(s[:80]) for s in bad])}"
    if not 0 <= spec.failure_threshold <= 1:
        problems["failure_threshold"] = f"a share between 0 and 1; got {spec.failure_threshold}"
    if spec.deadline_s <= 0:
        problems["deadline_s"] = f"must be positive; got {spec.deadline_s}"
    if not 0 <= spec.max_retries <= 100:
        problems["max_retries"] = f"between 0 and 100; got {spec.max_retries}"
    if spec.backoff_base_s <= 0:
        problems["backoff_base_s"] = f"must be positive; got {spec.backoff_base_s}"
    if problems:
        raise InvalidFields(problems)


def _twice(servers: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for server in servers:
        (twice if server in seen else seen).add(server)
    return sorted(twice)
