"""From the training thread to the trainer log: a non-blocking observer and one writer per run.

The observer runs on the training thread and only hands reports to the event
loop (`call_soon_threadsafe`), so a slow trainer-svc never slows training. The
writer appends them in order to the run's stream, which it alone writes, through
a `ReportLog`: trainer-svc's AppendReports in a worker (`GrpcReportLog`), any event
store in tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict, EventStoreError
from modelyard_events.schemas.training import (
    RUN_STREAM,
    EvaluationCompleted,
    LogLine,
    RunPhase,
    TrainingCancelled,
    TrainingCompleted,
    TrainingFailed,
    TrainingPaused,
    TrainingPhaseChanged,
    TrainingReport,
)
from modelyard_trainer.report_wire import report_batches
from modelyard_trainer.reports import (
    RunIdentity,
    epoch_reports,
    progress_report,
    started_report,
)
from modelyard_trainer.training import CheckpointInfo, EpochResult, Progress, StartInfo
from modelyard_trainer.worker.run_logs import RunLines, merged_logs

log = logging.getLogger(__name__)

RUN_OUTCOMES = (TrainingCompleted, TrainingFailed, TrainingPaused, TrainingCancelled, EvaluationCompleted)
"""The reports that end a run: nothing the run says comes after one."""
ReportQueue = asyncio.Queue[Sequence[TrainingReport] | None]
"""Reports in the order they happened; None ends the run's reports."""

_MAX_BACKOFF_S = 5.0


class ReportLog(Protocol):
    """Where a run's reports go: what the writer needs of an event store (or of trainer-svc).

    `append` is atomic and succeeds only when the stream is at `expected_version`, else raises
    ConcurrencyConflict with the actual version; a retryable failure is an EventStoreError.
    """

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[TrainingReport],
        context: CommandContext,
    ) -> object:
        """Append `events` to the stream at `expected_version` (0 = new)."""
        ...


class QueuedReports:
    """A `TrainingObserver` that turns each callback into reports on the event loop's queue."""

    def __init__(self, run: RunIdentity, loop: asyncio.AbstractEventLoop, queue: ReportQueue) -> None:
        self.run, self._loop, self._queue = run, loop, queue
        self.lines = RunLines(self.put, self.run.fields)
        self.heard_at = time.monotonic()  # when the run last said anything (worker/stalls.py)

    def log_line(self, line: LogLine) -> None:
        """Queue a line the run logged (`TrainingLogged`), within the run's cap of lines."""
        self.heard_at = time.monotonic()  # a line over the cap is a sign of life too
        self.lines.offer(line)

    def phase(self, phase: RunPhase, message: str) -> None:
        """Queue `TrainingPhaseChanged`."""
        self.put([TrainingPhaseChanged(**self.run.fields(), phase=phase, message=message)])

    def started(self, info: StartInfo) -> None:
        """Queue `TrainingStarted`."""
        self.put([started_report(self.run, info)])

    def progressed(self, progress: Progress) -> None:
        """Queue `TrainingProgressed`."""
        self.put([progress_report(self.run, progress)])

    def epoch_completed(self, result: EpochResult, checkpoint: CheckpointInfo) -> None:
        """Queue `EpochCompleted` and `CheckpointSaved`."""
        self.put(epoch_reports(self.run, result, checkpoint))

    def put(self, reports: Sequence[TrainingReport]) -> None:
        """Queue reports from any thread; returns at once. Before the run's last word (its outcome),
        the count of the lines it did not keep, so the outcome stays the stream's last report."""
        self.heard_at = time.monotonic()
        if any(isinstance(report, RUN_OUTCOMES) for report in reports):
            reports = [*self.lines.final_reports(datetime.now(UTC)), *reports]
        self._loop.call_soon_threadsafe(self._queue.put_nowait, reports)

    def close(self) -> None:
        """No report follows (from any thread); first, how many lines were not kept since the
        outcome, if any (a run stopped at shutdown has no outcome)."""
        final = self.lines.final_reports(datetime.now(UTC))
        if final:
            self.put(final)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)


async def write_reports(
    store: ReportLog, dispatch_id: str, context: CommandContext, queue: ReportQueue
) -> TrainingReport | None:
    """Append the queue's reports to stream (RUN_STREAM, dispatch_id) until None; return the last.

    What waits in the queue goes in as few appends as trainer-svc's bounds allow (`report_batches`),
    consecutive log lines merged into few reports (`merged_logs`).
    """
    version, last, ended = 0, None, False
    while not ended:
        batch = await queue.get()
        reports = list(batch or [])
        ended = batch is None
        while not ended and not queue.empty():  # whatever else is waiting goes in the same append
            more = queue.get_nowait()
            reports += more or []
            ended = more is None
        for chunk in report_batches(merged_logs(reports)):
            version = await append_reports(store, dispatch_id, version, chunk, context)
            last = chunk[-1]
    return last


async def append_reports(
    store: ReportLog,
    dispatch_id: str,
    version: int,
    reports: Sequence[TrainingReport],
    context: CommandContext,
) -> int:
    """Append at `version`, retrying store errors with backoff; return the stream's new version.

    The writer is the stream's only writer, so a conflict at exactly `version +
    len(reports)` means an earlier try committed although its answer was lost.
    """
    backoff = 0.1
    while True:
        try:
            await store.append(RUN_STREAM, dispatch_id, version, reports, context)
            return version + len(reports)
        except ConcurrencyConflict as conflict:
            if conflict.actual_version == version + len(reports):
                return conflict.actual_version
            raise
        except EventStoreError as error:
            log.warning("reports of dispatch %s not written yet (%s); retrying", dispatch_id, error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
