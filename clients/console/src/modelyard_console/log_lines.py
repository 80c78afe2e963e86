"""A job's training log lines as the pages show them: time, level, attempt, logger, message.

The lines are written by trainers: the templates autoescape every field, and the text download is
served as text/plain with `nosniff` (security_headers), so no line is ever read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.job_logs import log_line_text

__all__ = ["LogLineView", "log_line_text", "log_line_view"]

MAX_LINES_SHOWN = 2_000  # the page keeps at most this many (console.js drops the oldest)
MAX_LINES_DOWNLOADED = 100_000
PAGE_SIZE = 1_000  # GetJobLogs' largest page


@dataclass(frozen=True, slots=True)
class LogLineView:
    """One line for the log panel."""

    cursor: int
    at: str
    level: str
    attempt: int
    logger: str
    message: str


def log_line_view(line: jobs_pb2.JobLogLine) -> LogLineView:
    """`line` with its time as `2026-12-03 09:41:07` (UTC)."""
    at = line.at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
    return LogLineView(line.cursor, at, line.level, line.attempt, line.logger, line.message)
