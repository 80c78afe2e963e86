"""Pure: one envelope of any service's log → the audit view's row (no I/O).

The events are the audit log (DESIGN §6); this row only lifts out of each envelope what an auditor
filters on, so that a search never has to decode payloads: who (actor subject and roles), for which
organization, why (the payload's `reason`, on cancel, reject, deprecate, rollback …), and which
command started it (correlation id) across services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard_events.envelope import EventEnvelope

REASON_MAX_CHARS = 2000  # a reason is bounded by its schema; this keeps the row bounded whatever comes


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One event as the audit view stores it (keyed by source and position)."""

    source: str
    position: int
    event_id: str
    type: str
    stream_type: str
    stream_id: str
    occurred_at: datetime
    actor_subject: str
    actor_roles: tuple[str, ...]
    org_id: str | None
    reason: str
    correlation_id: str
    causation_id: str | None

    def as_params(self) -> dict[str, Any]:
        """The row as statement parameters."""
        return {
            "source": self.source,
            "position": self.position,
            "event_id": self.event_id,
            "type": self.type,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "occurred_at": self.occurred_at,
            "actor_subject": self.actor_subject,
            "actor_roles": list(self.actor_roles),
            "org_id": self.org_id,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }


def reason_of(data: dict[str, Any]) -> str:
    """The payload's `reason` when it has a non-empty string one, else "".

    Read from the stored payload rather than the decoded event so that every type, present and
    future, that names its why `reason` is covered without a list to keep up to date.
    """
    reason = data.get("reason")
    return reason[:REASON_MAX_CHARS] if isinstance(reason, str) else ""


def audit_row(source: str, envelope: EventEnvelope) -> AuditRow:
    """The audit row of one event of `source`'s log."""
    return AuditRow(
        source=source,
        position=envelope.position,
        event_id=str(envelope.event_id),
        type=envelope.type,
        stream_type=envelope.stream_type,
        stream_id=envelope.stream_id,
        occurred_at=envelope.occurred_at,
        actor_subject=envelope.actor.subject,
        actor_roles=tuple(envelope.actor.roles),
        org_id=envelope.org_id,
        reason=reason_of(envelope.data),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
    )
