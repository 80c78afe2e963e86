"""What a job event means for this trainer: start a run, pause or cancel one, or nothing.

Pure bookkeeping (no Kafka, no threads), so every decision is unit-tested; the
worker applies the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelyard_events.envelope import CommandContext, DomainEvent, EventEnvelope
from modelyard_events.schemas.jobs import (
    JobCancelRequested,
    JobDispatched,
    JobLeaseExpired,
    JobPauseRequested,
)
from modelyard_trainer.reports import report_context


@dataclass(frozen=True)
class StartRun:
    """Run this dispatch; its reports carry `context`. The slot is already taken."""

    dispatch: JobDispatched
    context: CommandContext


@dataclass(frozen=True)
class ControlRun:
    """Ask the run of `dispatch_id` to pause or cancel."""

    dispatch_id: str
    action: Literal["pause", "cancel"]


@dataclass(frozen=True)
class Ignore:
    """Nothing to do; `reason` is worth a log line when not empty (events for others are silent)."""

    reason: str = ""


Decision = StartRun | ControlRun | Ignore


class Intake:
    """Decides on the job events one trainer sees, and tracks the dispatches it runs.

    A dispatch id is taken at most once (Kafka delivers at least once). A dispatch
    refused for want of a slot is not renewed by our heartbeats, so job-svc's lease
    lapses and the job is queued again.
    """

    def __init__(self, trainer_id: str, slots: int) -> None:
        self.trainer_id, self.slots = trainer_id, slots
        self._running: dict[str, tuple[str, int]] = {}  # dispatch id -> (job id, attempt)
        self._seen: set[str] = set()
        self._taking = True

    @property
    def running_dispatch_ids(self) -> list[str]:
        """The dispatches holding a slot now, in the order they started."""
        return list(self._running)

    def decide(self, envelope: EventEnvelope, event: DomainEvent) -> Decision:
        """The decision for one job event; a `StartRun` takes a slot until `finished`."""
        if isinstance(event, JobDispatched):
            return self._dispatched(envelope, event) if event.trainer_id == self.trainer_id else Ignore()
        if isinstance(event, JobPauseRequested | JobCancelRequested):
            dispatch_id = self._dispatch_of(event.job_id, event.attempt)
            if dispatch_id is None:
                return Ignore()
            return ControlRun(dispatch_id, "pause" if isinstance(event, JobPauseRequested) else "cancel")
        if isinstance(event, JobLeaseExpired) and event.dispatch_id in self._running:
            # job-svc gave up on this dispatch (heartbeats did not reach it) and queued the job
            # again; its reports would be ignored, so the slot is better spent elsewhere.
            return ControlRun(event.dispatch_id, "cancel")
        return Ignore()

    def finished(self, dispatch_id: str) -> None:
        """The run of `dispatch_id` ended: its slot is free."""
        self._running.pop(dispatch_id, None)

    def stop_taking(self) -> None:
        """Refuse every later dispatch (the worker is shutting down)."""
        self._taking = False

    def _dispatched(self, envelope: EventEnvelope, event: JobDispatched) -> Decision:
        if event.dispatch_id in self._seen:
            return Ignore(f"dispatch {event.dispatch_id} already received; duplicate ignored")
        self._seen.add(event.dispatch_id)
        if not self._taking:
            return Ignore(f"dispatch {event.dispatch_id} refused: this trainer is shutting down")
        if len(self._running) >= self.slots:
            return Ignore(
                f"dispatch {event.dispatch_id} refused: all {self.slots} slot(s) busy; "
                "its lease will lapse and job-svc will queue the job again"
            )
        self._running[event.dispatch_id] = (event.job_id, event.attempt)
        return StartRun(event, report_context(self.trainer_id, envelope))

    def _dispatch_of(self, job_id: str, attempt: int) -> str | None:
        for dispatch_id, running in self._running.items():
            if running == (job_id, attempt):
                return dispatch_id
        return None
