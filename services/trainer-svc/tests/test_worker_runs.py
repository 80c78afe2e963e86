"""Runs on their threads report to the store in order; pause, cancel, failure and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from worker_samples import dispatch_of, envelope_of, settings_for

from modelyard_devstack.processes import eventually
from modelyard_events.schemas.bounds import REASON_MAX_CHARS
from modelyard_events.schemas.training import (
    TRAINER_EVENTS,
    TrainingCompleted,
    TrainingFailed,
    TrainingPaused,
)
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_trainer.reports import RunIdentity, report_context
from modelyard_trainer.training import sha256_of
from modelyard_trainer.worker.intake import ControlRun, StartRun
from modelyard_trainer.worker.report_writer import QueuedReports, ReportQueue
from modelyard_trainer.worker.runs import Runs, report_failure
from modelyard_trainer.worker.spec import path_of_file_uri


class Worker:
    """Runs over an in-memory store, with the dispatch ids whose runs finished."""

    def __init__(self, root: Path, **settings: Any) -> None:
        self.store = InMemoryEventStore()
        self.finished: list[str] = []
        self.runs = Runs(settings_for(root, **settings), self.store, self.finished.append)

    def start(self, dataset: Path, **hyperparameters: Any) -> str:
        dispatch = dispatch_of(
            dataset_uri=dataset.as_uri(), hyperparameters={"channels": 4, **hyperparameters}
        )
        self.runs.start(StartRun(dispatch, report_context("trainer-a", envelope_of(dispatch))))
        return dispatch.dispatch_id

    async def types(self, dispatch_id: str) -> list[str]:
        # The run's log lines are tested on their own (test_worker_run_logs.py).
        envelopes = await self.store.read_stream(dispatch_id)
        return [envelope.type for envelope in envelopes if envelope.type != "TrainingLogged"]

    async def until_finished(self, dispatch_id: str) -> list[str]:
        async def finished() -> bool:
            return dispatch_id in self.finished

        await eventually(finished, timeout_s=120, what=f"the end of {dispatch_id}")
        return await self.types(dispatch_id)


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    worker = Worker(tmp_path)
    yield worker
    await worker.runs.shutdown()


async def test_a_run_reports_its_start_each_epoch_and_checkpoint_then_completion_in_order(
    worker: Worker, digits_npz: Path
) -> None:
    dispatch_id = worker.start(digits_npz, epochs=2)

    types = [t for t in await worker.until_finished(dispatch_id) if t != "TrainingProgressed"]

    assert types == [
        *["TrainingPhaseChanged"] * 3,  # fetching, loading the data, building the model
        "TrainingStarted",
        *["EpochCompleted", "CheckpointSaved"] * 2,
        "TrainingCompleted",
    ]
    envelopes = await worker.store.read_stream(dispatch_id)
    assert [e.stream_version for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert {(e.actor.subject, e.org_id) for e in envelopes} == {("trainer-a", "org-1")}
    completed = TRAINER_EVENTS.decode(envelopes[-1])
    assert isinstance(completed, TrainingCompleted)
    assert sha256_of(path_of_file_uri(completed.artifact_uri)) == completed.artifact_sha256


async def test_a_cancel_that_arrives_before_training_begins_still_stops_the_run(
    worker: Worker, digits_npz: Path
) -> None:
    dispatch_id = worker.start(digits_npz, epochs=100)
    worker.runs.control(ControlRun(dispatch_id, "cancel"))

    types = await worker.until_finished(dispatch_id)

    assert types[-1] == "TrainingCancelled"
    assert "EpochCompleted" not in types


async def test_a_paused_run_reports_a_checkpoint_that_exists(worker: Worker, digits_npz: Path) -> None:
    dispatch_id = worker.start(digits_npz, epochs=100)
    worker.runs.control(ControlRun(dispatch_id, "pause"))

    await worker.until_finished(dispatch_id)

    paused = TRAINER_EVENTS.decode((await worker.store.read_stream(dispatch_id))[-1])
    assert isinstance(paused, TrainingPaused)
    assert path_of_file_uri(paused.checkpoint_uri).is_file()


@pytest.mark.parametrize(
    ("dataset", "hyperparameters", "reason"),
    [
        ("digits", {"learning_rate": 0.1}, "hyperparameters refused by the trainer"),
        ("missing", {"epochs": 1}, "missing.npz"),
    ],
)
async def test_a_dispatch_that_cannot_be_trained_reports_training_failed(
    worker: Worker, digits_npz: Path, dataset: str, hyperparameters: dict[str, Any], reason: str
) -> None:
    path = digits_npz if dataset == "digits" else digits_npz.parent / "missing.npz"
    dispatch_id = worker.start(path, **hyperparameters)

    assert (await worker.until_finished(dispatch_id))[-1] == "TrainingFailed"
    failed = (await worker.store.read_stream(dispatch_id))[-1]
    assert reason in failed.data["reason"]


async def test_a_worker_that_does_not_allow_local_files_fails_a_file_dispatch_saying_why(
    tmp_path: Path, digits_npz: Path
) -> None:
    worker = Worker(tmp_path, allow_file_datasets=False)
    try:
        dispatch_id = worker.start(digits_npz, epochs=1)

        assert await worker.until_finished(dispatch_id) == ["TrainingFailed"]
    finally:
        await worker.runs.shutdown()
    reason = (await worker.store.read_stream(dispatch_id))[-1].data["reason"]
    assert "trains only on published dataset versions, not local files" in reason
    assert "dataset://<dataset_id>/<version number>" in reason


async def test_shutdown_stops_the_runs_and_writes_no_further_report(worker: Worker, digits_npz: Path) -> None:
    dispatch_id = worker.start(digits_npz, epochs=500)

    async def started() -> bool:
        return "TrainingStarted" in await worker.types(dispatch_id)

    await eventually(started, timeout_s=60, what="TrainingStarted")
    await worker.runs.shutdown()
    written = await worker.types(dispatch_id)
    await asyncio.sleep(0)  # let any callback the threads scheduled run

    assert await worker.types(dispatch_id) == written
    assert not {"TrainingCancelled", "TrainingCompleted", "EpochCompleted"} & set(written)
    assert worker.finished == [dispatch_id]


async def test_a_failure_too_long_for_its_event_is_kept_whole_in_the_run_folder(tmp_path: Path) -> None:
    run = RunIdentity("job-1", 1, "dsp-1", "trainer-a")
    queue: ReportQueue = asyncio.Queue()
    full = "unexpected trainer error (RuntimeError): " + "why " * 100_000

    report_failure(
        QueuedReports(run, asyncio.get_running_loop(), queue), RuntimeError("why " * 100_000), tmp_path
    )

    reports = await asyncio.wait_for(queue.get(), timeout=5)
    assert reports is not None
    failed = reports[0]
    assert isinstance(failed, TrainingFailed)
    kept = tmp_path / "failure.txt"
    assert len(failed.reason) == REASON_MAX_CHARS
    assert failed.reason.startswith("unexpected trainer error (RuntimeError): why why")
    assert failed.reason.endswith(f"… (truncated; full text in {kept})")
    assert kept.read_text() == full + "\n"


async def test_a_failure_that_fits_its_event_writes_no_file(tmp_path: Path) -> None:
    run = RunIdentity("job-1", 1, "dsp-1", "trainer-a")
    queue: ReportQueue = asyncio.Queue()

    report_failure(QueuedReports(run, asyncio.get_running_loop(), queue), ValueError("bad"), tmp_path)

    reports = await asyncio.wait_for(queue.get(), timeout=5)
    assert reports is not None
    assert isinstance(reports[0], TrainingFailed)
    assert reports[0].reason == "cannot start the run: bad"
    assert not (tmp_path / "failure.txt").exists()
