"""A run's own log lines, kept with its reports: what `yard jobs logs` and the console show.

One handler on the root logger sees every record of the worker process; it keeps a record only when
it was logged on behalf of a run, which a context variable says: the run's task sets it, and the
training thread runs in a copy of that task's context. So the lines of two runs on two slots never
mix, and the worker's own lines (heartbeats, intake) stay out of every run's log.

Each line becomes a `TrainingLogged` report on the run's queue; the writer merges consecutive ones
(`merged_logs`), so a burst of lines costs one append. A run keeps at most `MAX_LINES_PER_ATTEMPT`
lines: past that it counts what it drops and says so once, at its end, so a chatty run cannot
fill the trainers' log.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from modelyard_events.schemas.bounds import NAME_MAX_CHARS, REASON_MAX_CHARS, truncate_text
from modelyard_events.schemas.training import (
    MAX_LOG_LINES_PER_EVENT,
    LogLevel,
    LogLine,
    TrainingLogged,
    TrainingReport,
)

MAX_LINES_PER_ATTEMPT = 5_000
CAPTURED_LOGGERS = ("modelyard", "py.warnings")
_LEVELS: dict[int, LogLevel] = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

LineSink = Callable[[LogLine], None]
_current_sink: contextvars.ContextVar[LineSink | None] = contextvars.ContextVar("run_log_sink", default=None)


class RunLines:
    """Counts a run's lines against its cap; `offer` keeps a line or counts it dropped (any thread)."""

    def __init__(
        self, put: Callable[[Sequence[TrainingReport]], None], fields: Callable[[], dict[str, Any]]
    ) -> None:
        self._put, self._fields = put, fields
        self._lock = threading.Lock()
        self.kept = self.dropped = 0

    def offer(self, line: LogLine) -> None:
        """Queue `line` as a report while under the cap; else count it."""
        with self._lock:
            if self.kept >= MAX_LINES_PER_ATTEMPT:
                self.dropped += 1
                return
            self.kept += 1
        self._put([TrainingLogged(**self._fields(), lines=[line])])

    def final_reports(self, now: datetime) -> list[TrainingReport]:
        """The one report saying how many lines were not kept since the last such report (none when
        every line was)."""
        with self._lock:
            dropped, self.dropped = self.dropped, 0
        if not dropped:
            return []
        line = LogLine(
            at=now,
            level="WARNING",
            logger=__name__,
            message=f"{dropped:,} more lines were not kept (a run keeps {MAX_LINES_PER_ATTEMPT:,})",
        )
        return [TrainingLogged(**self._fields(), lines=[line], dropped=dropped)]


class RunLogCapture(logging.Handler):
    """Hands each record logged on behalf of a run to that run's sink (the context variable's): our
    own loggers' and Python's warnings, not third-party libraries' (their lines would land, internal
    paths and all, in events the job's organization reads)."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current_sink.get()
        if sink is None or not record.name.startswith(CAPTURED_LOGGERS):
            return
        try:
            sink(line_of(record, self.format(record)))
        except Exception:  # a closed event loop at shutdown, a bad format: never the run's failure
            self.handleError(record)


def line_of(record: logging.LogRecord, text: str) -> LogLine:
    """The event's line for a formatted record: its text cut to what an event holds."""
    return LogLine(
        at=datetime.fromtimestamp(record.created, UTC),
        level=_LEVELS.get(record.levelno, "INFO" if record.levelno < logging.WARNING else "ERROR"),
        logger=record.name[:NAME_MAX_CHARS],
        message=truncate_text(text, REASON_MAX_CHARS),
    )


_installed: RunLogCapture | None = None


def install_run_log_capture(level: int = logging.INFO) -> RunLogCapture:
    """Add the capture to the root logger once per process (warnings are logged too, as `py.warnings`)."""
    global _installed
    if _installed is None:
        _installed = RunLogCapture(level)
        _installed.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger().addHandler(_installed)
        logging.captureWarnings(True)
    return _installed


@contextmanager
def logging_for(sink: LineSink) -> Iterator[None]:
    """Within the block (and in contexts copied from it: tasks, the training thread), records go to `sink`."""
    token = _current_sink.set(sink)
    try:
        yield
    finally:
        _current_sink.reset(token)


def merged_logs(reports: Sequence[TrainingReport]) -> list[TrainingReport]:
    """`reports` in order, each run of consecutive `TrainingLogged` merged into reports of at most
    MAX_LOG_LINES_PER_EVENT lines (their `dropped` counts summed onto the first)."""
    merged: list[TrainingReport] = []
    for report in reports:
        last = merged[-1] if merged else None
        if (
            isinstance(report, TrainingLogged)
            and isinstance(last, TrainingLogged)
            and len(last.lines) + len(report.lines) <= MAX_LOG_LINES_PER_EVENT
        ):
            merged[-1] = last.model_copy(
                update={"lines": [*last.lines, *report.lines], "dropped": last.dropped + report.dropped}
            )
        else:
            merged.append(report)
    return merged
