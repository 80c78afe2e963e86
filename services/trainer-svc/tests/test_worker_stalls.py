"""A training thread that hangs is found; its run's logs say why; the worker exits to be restarted."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_worker_runs import Worker
from worker_samples import settings_for

from modelyard_devstack.processes import eventually
from modelyard_events.schemas.jobs import JobDispatched
from modelyard_events.schemas.training import LogLine
from modelyard_trainer import main as trainer_main
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.reports import RunIdentity, outcome_report
from modelyard_trainer.training import Cancelled
from modelyard_trainer.worker import runs as runs_module
from modelyard_trainer.worker import stalls
from modelyard_trainer.worker.report_writer import QueuedReports, ReportQueue
from modelyard_trainer.worker.run_logs import MAX_LINES_PER_ATTEMPT


@pytest.fixture
def hanging_training(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Training threads that say one phase and then hang (as on a file system that stopped
    answering) until the event is set; `_released` sets it and waits for them to end."""
    release = threading.Event()

    def hangs(dispatch: JobDispatched, settings: TrainerSettings, observer: QueuedReports, *_: Any) -> None:
        observer.phase("loading_data", "reading a file system that has stopped answering")
        try:
            release.wait(120)
        finally:
            observer.close()

    monkeypatch.setattr(runs_module, "train", hangs)
    return release


async def test_a_hung_training_thread_is_found_and_its_run_logs_say_why(
    tmp_path: Path, digits_npz: Path, hanging_training: threading.Event
) -> None:
    worker = Worker(tmp_path, training_stall_timeout_s=0.5)
    append = worker.store.append

    async def slow_append(*args: Any) -> Any:  # a trainer-svc that takes its time
        await asyncio.sleep(0.3)
        return await append(*args)

    worker.store.append = slow_append  # type: ignore[method-assign]
    dispatch_id = worker.start(digits_npz)
    try:
        await asyncio.wait_for(worker.runs.stall.wait(), timeout=60)

        assert worker.runs.stalled == {dispatch_id}
        assert dispatch_id not in worker.finished  # its slot is not free: the thread still holds it
        started = time.monotonic()
        await worker.runs.shutdown()  # lets the run's last line be written, does not wait for the thread
        assert time.monotonic() - started < 15
        said = [line for line in await _lines(worker, dispatch_id) if "said nothing" in line]
        assert "the training thread has said nothing for" in said[0]
        assert "MODELYARD_TRAINING_STALL_TIMEOUT_S=0.5" in said[0]
        assert f"exits (status {stalls.EXIT_STALLED})" in said[0]
        assert "TrainingFailed" not in await worker.types(dispatch_id)  # the job resumes elsewhere
    finally:
        await _released(hanging_training)


async def test_a_hung_thread_that_wakes_on_the_cancel_reports_nothing_more(
    tmp_path: Path, digits_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What it would report (TrainingCancelled) would end the job, which must resume elsewhere.
    def hangs_until_cancelled(
        dispatch: JobDispatched, settings: TrainerSettings, observer: QueuedReports, control: Any, *_: Any
    ) -> None:
        observer.phase("loading_data", "reading a file system that has stopped answering")
        while not control.cancel_requested:
            time.sleep(0.01)
        observer.put([outcome_report(observer.run, Cancelled())])
        observer.close()

    monkeypatch.setattr(runs_module, "train", hangs_until_cancelled)
    worker = Worker(tmp_path, training_stall_timeout_s=0.3)
    dispatch_id = worker.start(digits_npz)
    await asyncio.wait_for(worker.runs.stall.wait(), timeout=60)
    await worker.runs.shutdown()
    await asyncio.to_thread(_join_training_threads)

    assert "TrainingCancelled" not in await worker.types(dispatch_id)
    assert any("said nothing" in line for line in await _lines(worker, dispatch_id))


async def test_no_watch_when_the_timeout_is_zero(
    tmp_path: Path, digits_npz: Path, hanging_training: threading.Event
) -> None:
    worker = Worker(tmp_path, training_stall_timeout_s=0)
    dispatch_id = worker.start(digits_npz)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(worker.runs.stall.wait(), timeout=1.5)
        assert worker.runs.stalled == set()
    finally:
        hanging_training.set()
    await eventually(lambda: _finished(worker, dispatch_id), timeout_s=30, what="the run's end")
    await worker.runs.shutdown()  # waits for the (ended) thread, as a worker without the watch does


async def test_a_thread_that_keeps_talking_is_not_taken_as_hung() -> None:
    loop = asyncio.get_running_loop()
    thread = loop.create_future()
    loop.call_later(0.6, thread.set_result, None)

    assert await stalls.watch(thread, time.monotonic, timeout_s=0.1) is None


async def test_a_silent_thread_is_reported_with_how_long_it_was_silent() -> None:
    thread: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    heard_at = time.monotonic() - 5

    silent = await stalls.watch(thread, lambda: heard_at, timeout_s=0.2)

    assert silent is not None
    assert silent >= 5
    assert not thread.done()  # the thread is left as it is: it cannot be stopped


async def test_a_thread_that_fails_raises_its_error_from_the_watch() -> None:
    thread: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    thread.set_exception(RuntimeError("boom"))

    with pytest.raises(RuntimeError, match="boom"):
        await stalls.watch(thread, time.monotonic, timeout_s=10)


async def test_every_report_and_log_line_counts_as_a_sign_of_life() -> None:
    queue: ReportQueue = asyncio.Queue()
    observer = QueuedReports(RunIdentity("job-1", 1, "dsp-1", "trainer-a"), asyncio.get_running_loop(), queue)
    line = LogLine(at=_now(), level="INFO", logger="t", message="hello")
    observer.heard_at = 0.0
    observer.log_line(line)
    assert observer.heard_at > 0
    observer.heard_at = 0.0
    observer.phase("loading_data", "loading")
    assert observer.heard_at > 0
    observer.lines.kept = MAX_LINES_PER_ATTEMPT  # a line over the run's cap is not kept, but heard
    observer.heard_at = 0.0
    observer.log_line(line)
    assert observer.heard_at > 0
    assert observer.lines.dropped == 1


def test_the_worker_exits_with_its_own_status_when_a_thread_hung(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    async def hung_worker(settings: TrainerSettings, stop: asyncio.Event) -> None:
        raise stalls.TrainingThreadStalled("the training thread of dispatch(es) ['dsp-1'] hung")

    def exit_now(status: int) -> None:
        raise SystemExit(status)

    monkeypatch.setattr(trainer_main, "TrainerSettings", lambda: settings_for(tmp_path))
    monkeypatch.setitem(trainer_main.MODES, "work", hung_worker)
    monkeypatch.setattr(trainer_main.os, "_exit", exit_now)

    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
        trainer_main.main(["work"])

    assert exited.value.code == stalls.EXIT_STALLED == 3
    assert "['dsp-1'] hung; exiting with status 3" in caplog.text


def test_the_stall_timeout_is_a_setting_that_is_never_negative(tmp_path: Path) -> None:
    assert settings_for(tmp_path).training_stall_timeout_s == 1800
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        settings_for(tmp_path, training_stall_timeout_s=-1)


async def _released(release: threading.Event) -> None:
    """After a stall's shutdown: the executor's threads end once their hung task does."""
    release.set()
    await asyncio.to_thread(_join_training_threads)


def _join_training_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("training"):
            thread.join(30)


async def _finished(worker: Worker, dispatch_id: str) -> bool:
    return dispatch_id in worker.finished


async def _lines(worker: Worker, dispatch_id: str) -> list[str]:
    envelopes = await worker.store.read_stream(dispatch_id)
    return [line["message"] for e in envelopes if e.type == "TrainingLogged" for line in e.data["lines"]]


def _now() -> datetime:
    return datetime.now(UTC)
