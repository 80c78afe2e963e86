"""A run's own log lines become its `TrainingLogged` reports: only its lines, in order, bounded."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_worker_runs import Worker

from modelyard_events.schemas.training import (
    MAX_LOG_LINES_PER_EVENT,
    TRAINER_EVENTS,
    LogLine,
    TrainingCancelled,
    TrainingLogged,
    TrainingReport,
    TrainingStarted,
)
from modelyard_trainer.reports import RunIdentity
from modelyard_trainer.worker import run_logs
from modelyard_trainer.worker.report_writer import QueuedReports, ReportQueue
from modelyard_trainer.worker.run_logs import (
    RunLines,
    install_run_log_capture,
    logging_for,
    merged_logs,
)

_RUN = {"job_id": "job-1", "attempt": 1, "dispatch_id": "dsp-1", "trainer_id": "trainer-a"}
_AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _logged(*messages: str, dropped: int = 0) -> TrainingLogged:
    lines = [LogLine(at=_AT, level="INFO", logger="t", message=m) for m in messages]
    return TrainingLogged(**_RUN, lines=lines, dropped=dropped)


def _started() -> TrainingStarted:
    return TrainingStarted(
        **_RUN,
        device="cpu",
        amp=False,
        start_epoch=1,
        start_step=0,
        epochs_total=1,
        steps_per_epoch=1,
        train_samples=1,
        val_samples=1,
    )


def _messages(reports: Sequence[TrainingReport]) -> list[str]:
    return [line.message for r in reports if isinstance(r, TrainingLogged) for line in r.lines]


def test_consecutive_lines_merge_into_few_reports_and_other_reports_keep_their_place() -> None:
    many = [_logged(f"line {i}") for i in range(MAX_LOG_LINES_PER_EVENT + 3)]
    reports = [_logged("a"), _logged("b", dropped=2), _started(), *many]

    merged = merged_logs(reports)

    assert [type(r).__name__ for r in merged] == [
        "TrainingLogged",
        "TrainingStarted",
        "TrainingLogged",
        "TrainingLogged",
    ]
    first, _, full, _rest = merged
    assert isinstance(first, TrainingLogged)
    assert isinstance(full, TrainingLogged)
    assert (_messages([first]), first.dropped) == (["a", "b"], 2)
    assert len(full.lines) == MAX_LOG_LINES_PER_EVENT
    assert _messages(merged[2:]) == [f"line {i}" for i in range(MAX_LOG_LINES_PER_EVENT + 3)]
    # Every merged report is still a valid event (the schema's cap holds).
    for report in merged:
        TRAINER_EVENTS.class_of(report.type_name).model_validate(report.model_dump())


def test_a_run_keeps_its_cap_of_lines_and_says_once_how_many_it_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_logs, "MAX_LINES_PER_ATTEMPT", 3)
    queued: list[TrainingReport] = []
    lines = RunLines(queued.extend, lambda: dict(_RUN))

    for i in range(5):
        lines.offer(LogLine(at=_AT, level="INFO", logger="t", message=f"line {i}"))
    final = lines.final_reports(_AT)

    assert _messages(queued) == ["line 0", "line 1", "line 2"]
    assert len(final) == 1
    assert isinstance(final[0], TrainingLogged)
    assert final[0].dropped == 2
    assert "2 more lines were not kept" in final[0].lines[0].message


async def test_over_its_cap_a_run_says_how_many_lines_it_dropped_before_its_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_logs, "MAX_LINES_PER_ATTEMPT", 2)
    queue: ReportQueue = asyncio.Queue()
    observer = QueuedReports(RunIdentity(**_RUN), asyncio.get_running_loop(), queue)

    for i in range(5):
        observer.log_line(LogLine(at=_AT, level="INFO", logger="t", message=f"line {i}"))
    observer.put([TrainingCancelled(**_RUN)])
    observer.close()
    await asyncio.sleep(0)  # one turn runs every queueing callback scheduled above (FIFO); no timing
    queued: list[TrainingReport] = []
    while (batch := queue.get_nowait()) is not None:
        queued += batch

    assert [type(r).__name__ for r in queued] == ["TrainingLogged"] * 3 + ["TrainingCancelled"]
    summary = queued[2]
    assert isinstance(summary, TrainingLogged)
    assert summary.dropped == 3  # the outcome stays the stream's last report, as job-svc expects


def test_a_line_holds_no_nul_and_its_time_has_a_zone() -> None:
    line = LogLine(at=_AT, level="INFO", logger="t\x00x", message="a\x00b")

    assert (line.logger, line.message) == ("t\ufffdx", "a\ufffdb")  # PostgreSQL text refuses U+0000
    with pytest.raises(ValueError, match="timezone"):
        LogLine(at=datetime(2026, 12, 3, 9, 0), level="INFO", logger="t", message="naive")


def test_third_party_libraries_lines_stay_out_of_a_run(captured: logging.Logger) -> None:
    lines: list[LogLine] = []
    with logging_for(lines.append):
        logging.getLogger("urllib3.connectionpool").warning("retrying http://internal:9000/")
        captured.warning("ours")

    assert [line.message for line in lines] == ["ours"]


def test_a_run_that_kept_every_line_says_nothing_at_its_end() -> None:
    lines = RunLines(lambda reports: None, lambda: dict(_RUN))
    lines.offer(LogLine(at=_AT, level="INFO", logger="t", message="only"))

    assert lines.final_reports(_AT) == []


@pytest.fixture
def captured() -> Iterator[logging.Logger]:
    install_run_log_capture()
    logger = logging.getLogger("modelyard_trainer.test_run_logs")
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(logging.NOTSET)


def test_only_records_logged_on_behalf_of_a_run_reach_it_even_from_its_thread(
    captured: logging.Logger,
) -> None:
    mine: list[LogLine] = []
    other: list[LogLine] = []

    captured.info("before any run")
    with logging_for(mine.append):
        captured.warning("in the run: %d", 1)
        in_run = contextvars.copy_context()
    with logging_for(other.append):
        captured.info("in another run")
    thread = threading.Thread(target=in_run.run, args=(captured.error, "from the run's thread"))
    thread.start()
    thread.join()
    unrelated = threading.Thread(target=captured.error, args=("from an unrelated thread",))
    unrelated.start()
    unrelated.join()
    captured.info("after the runs")

    assert [(line.level, line.message) for line in mine] == [
        ("WARNING", "in the run: 1"),
        ("ERROR", "from the run's thread"),
    ]
    assert [line.message for line in other] == ["in another run"]
    assert mine[0].logger == "modelyard_trainer.test_run_logs"


def test_a_long_record_is_cut_to_what_an_event_holds(captured: logging.Logger) -> None:
    lines: list[LogLine] = []
    with logging_for(lines.append):
        captured.error("x" * 10_000)

    assert len(lines[0].message) == 2000
    assert lines[0].message.endswith("(truncated)")


async def test_a_training_run_logs_its_data_model_epochs_and_artifact_into_its_stream(
    tmp_path: Path, digits_npz: Path, captured: logging.Logger
) -> None:
    engine_log = logging.getLogger("modelyard_trainer.training.engine")
    engine_log.setLevel(logging.INFO)  # the worker's own logging config is INFO; pytest's is WARNING
    worker = Worker(tmp_path)
    try:
        dispatch_id = worker.start(digits_npz, epochs=2)
        await worker.until_finished(dispatch_id)
        logging.getLogger("modelyard_trainer").warning("after the run: not one of its lines")
    finally:
        engine_log.setLevel(logging.NOTSET)
        await worker.runs.shutdown()
    envelopes = await worker.store.read_stream(dispatch_id)
    reports = [TRAINER_EVENTS.decode(e) for e in envelopes]
    messages = _messages(reports)

    assert any(m.startswith("loaded ") and "training and" in m for m in messages)
    assert any(m.startswith("model ") and "parameters on cpu" in m for m in messages)
    assert [m.split(":")[0] for m in messages if m.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert any(m.startswith("artifact written: ") for m in messages)
    assert not any("after the run" in m for m in messages)
    assert reports[-1].type_name == "TrainingCompleted"  # the lines come before the run's last report
