"""What an edge agent's report does to its deployment (the agent's side of the state machine).

Agents report at-least-once and out of order after a reconnect, so a report that repeats what the
deployment already says, or speaks of an attempt that was since retried, decides nothing; only a move
the table below does not allow is refused. Progress within one status and phase is recorded only in
steps of PERCENT_STEP points, so a slow link reporting every chunk does not flood the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelyard_deploy.domain.deployment import Deployment, retry_at_for_failure
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.deploy import DeploymentProgressed, DeploymentStatus, HealthReport

PERCENT_STEP = 5
# Status now → statuses an agent may report next. A cache hit skips downloading; an agent restarted
# while installing goes over its (resumed) download again before it installs, and must not be refused
# for it: it would stop, heartbeating, and the deployment would wait for its deadline.
# An agent's final word may come after earlier reports were lost (a call that timed out under load):
# "completed" is taken from any unfinished status, so a finished install never waits for its deadline.
AGENT_MOVES: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    "pending": frozenset({"downloading", "installing", "completed", "failed"}),
    "downloading": frozenset({"downloading", "installing", "completed", "failed"}),
    "installing": frozenset({"downloading", "installing", "completed", "failed"}),
}
AGENT_STATUSES = frozenset({"downloading", "installing", "completed", "failed"})


@dataclass(frozen=True)
class AgentReport:
    """One report of an edge agent about its deployment's attempt `attempt`.

    `retryable` matters only for failed: False for failures a retry cannot fix (a bad signature, a
    health-gate regression); `health` is the gate's verdict when the agent ran it.
    """

    attempt: int
    status: DeploymentStatus
    phase: str = ""
    percent: int = 0
    error: str = ""
    retryable: bool = True
    health: HealthReport | None = None


def report(deployment: Deployment, agent: AgentReport, now: datetime) -> list[DomainEvent]:
    """DeploymentProgressed for a report that moves the deployment; [] for a stale, repeated or
    too-small step, or for a cancelled deployment (the caller tells the agent it was cancelled)."""
    _check_fields(deployment, agent)
    if deployment.status == "cancelled" or agent.attempt < deployment.attempt:
        return []
    if _repeats(deployment, agent):
        return []
    allowed = AGENT_MOVES.get(deployment.status, frozenset())
    if agent.status not in allowed:
        raise IllegalTransition(_refusal(deployment, agent, allowed))
    percent = 100 if agent.status == "completed" else agent.percent
    if _same_step(deployment, agent) and not _advanced_enough(deployment.progress_percent, percent):
        return []
    failed = agent.status == "failed"
    return [
        DeploymentProgressed(
            deployment_id=deployment.deployment_id,
            server_id=deployment.server_id,
            attempt=deployment.attempt,
            status=agent.status,
            phase=agent.phase,
            progress_percent=percent,
            error_message=truncate_text(agent.error) if failed else "",
            retry_at=retry_at_for_failure(deployment, now, agent.retryable) if failed else None,
            health=agent.health,
        )
    ]


def _check_fields(deployment: Deployment, agent: AgentReport) -> None:
    if agent.status not in AGENT_STATUSES:
        raise InvalidArgument(
            "status", f"an agent reports downloading, installing, completed or failed; got {agent.status}"
        )
    if not 0 <= agent.percent <= 100:
        raise InvalidArgument("percent", f"must be between 0 and 100; got {agent.percent}")
    if len(agent.phase) > 32:
        raise InvalidArgument("phase", f"must be at most 32 characters; got {len(agent.phase)}")
    if not 1 <= agent.attempt <= deployment.attempt:
        raise InvalidArgument(
            "attempt", f"{deployment.describe()} is at attempt {deployment.attempt}; got {agent.attempt}"
        )


def _repeats(deployment: Deployment, agent: AgentReport) -> bool:
    """The same report again (a lost acknowledgement), including a repeated final one."""
    if deployment.status != agent.status:
        return False
    if agent.status in ("completed", "failed"):
        return True
    return deployment.phase == agent.phase and deployment.progress_percent == agent.percent


def _same_step(deployment: Deployment, agent: AgentReport) -> bool:
    return deployment.status == agent.status and deployment.phase == agent.phase


def _advanced_enough(recorded: int, reported: int) -> bool:
    return reported >= recorded + PERCENT_STEP or (reported == 100 and recorded < 100)


def _refusal(deployment: Deployment, agent: AgentReport, allowed: frozenset[DeploymentStatus]) -> str:
    where = f"{deployment.describe()} is {deployment.status} (attempt {deployment.attempt})"
    if not allowed:
        return f"{where}; it takes no further reports for this attempt, got {agent.status}"
    order = ("downloading", "installing", "completed", "failed")
    return (
        f"{where}; an agent may report {', '.join(s for s in order if s in allowed)} next, got {agent.status}"
    )
