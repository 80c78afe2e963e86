"""Who issues a command: the actor and correlation ids every event of that command records."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard_events.envelope import Actor, CommandContext


@dataclass(frozen=True)
class Caller:
    """Who issues a command and under which correlation id (recorded in every event)."""

    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None

    def context_for(self, org_id: str | None) -> CommandContext:
        """The store context of an event about organization `org_id`."""
        return CommandContext(
            actor=self.actor,
            org_id=org_id,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
