"""The runs of one worker: each a task that fetches its model version and dataset version, then
trains (or evaluates) in a thread, plus a task writing its reports."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelyard_events.schemas.bounds import REASON_MAX_CHARS, truncate_text
from modelyard_events.schemas.jobs import JobDispatched
from modelyard_events.schemas.training import TrainingReport
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.datasets.versions import refuse_local_files
from modelyard_trainer.reports import (
    RunIdentity,
    evaluated_report,
    evaluation_started_report,
    failure_reason,
    failure_report,
    outcome_report,
)
from modelyard_trainer.training import (
    Cancelled,
    TrainingControl,
    TrainingError,
    evaluate_model,
    run_training,
)
from modelyard_trainer.training.device import resolve_device
from modelyard_trainer.worker import stalls
from modelyard_trainer.worker.intake import ControlRun, StartRun
from modelyard_trainer.worker.report_writer import QueuedReports, ReportLog, ReportQueue, write_reports
from modelyard_trainer.worker.run_logs import install_run_log_capture, logging_for
from modelyard_trainer.worker.spec import run_folder, training_spec

log = logging.getLogger(__name__)

FAILURE_TEXT_FILE = "failure.txt"
TrainingUri = Callable[[str], Awaitable[str]]
"""From a dispatch's dataset URI to the local one to train on (`VersionFetcher.training_uri`)."""
ModelArtifact = Callable[[JobDispatched], Awaitable[Path | None]]
"""From a dispatch to its model version's local artifact, if any (`ModelInputFetcher.artifact_for`)."""
RunWork = Callable[[JobDispatched, TrainerSettings, QueuedReports, TrainingControl, str, Path | None], None]
DEFAULT_EVALUATION_SPLIT = "val"
STALL_FLUSH_S = 10.0  # how long a hung run's last line may take to reach trainer-svc at shutdown


async def unchanged_uri(dataset_uri: str) -> str:
    """A `TrainingUri` for workers without dataset-svc: the engine then reads `file://` URIs only."""
    return dataset_uri


async def no_model_versions(dispatch: JobDispatched) -> Path | None:
    """A `ModelArtifact` for workers without registry-svc: a dispatch naming a model version fails."""
    if dispatch.model_input is None:
        return None
    raise TrainingError(
        f"this trainer cannot fetch model version {dispatch.model_input.version_id}: it has no registry"
    )


@dataclass(frozen=True)
class _Run:
    identity: RunIdentity
    control: TrainingControl
    writer: asyncio.Task[TrainingReport | None]
    thread: asyncio.Future[None]  # fetch, then the training thread


class Runs:
    """Starts, controls and stops runs.

    `on_finished(dispatch_id)` is called once a run's last report is written (or
    the run was stopped at shutdown): its slot is free. `model_artifact` fetches the model version a
    run fine-tunes from or evaluates, then `training_uri` prepares its dataset; when either fails, or
    the dispatch names a `file://` dataset on a worker that does not allow them, the run reports
    `TrainingFailed`. A dispatch of kind "evaluation" evaluates (`evaluate`), any other trains.
    """

    def __init__(
        self,
        settings: TrainerSettings,
        store: ReportLog,
        on_finished: Callable[[str], None],
        training_uri: TrainingUri = unchanged_uri,
        model_artifact: ModelArtifact = no_model_versions,
    ) -> None:
        self._settings, self._store, self._on_finished = settings, store, on_finished
        self._training_uri, self._model_artifact = training_uri, model_artifact
        self._executor = ThreadPoolExecutor(settings.trainer_slots, thread_name_prefix="training")
        self._runs: dict[str, _Run] = {}
        self.stalled: set[str] = set()  # dispatches whose training thread hung (worker/stalls.py)
        self.stall = asyncio.Event()  # set once one has: the worker must exit
        install_run_log_capture()  # once per process: what runs log becomes their `TrainingLogged`

    def start(self, start: StartRun) -> None:
        """Start the run of a dispatch whose slot the intake took (on the running event loop)."""
        dispatch, loop = start.dispatch, asyncio.get_running_loop()
        identity = RunIdentity(
            dispatch.job_id, dispatch.attempt, dispatch.dispatch_id, self._settings.trainer_id
        )
        queue: ReportQueue = asyncio.Queue()
        # The control exists before the thread starts, so a pause or cancel that arrives first still counts.
        control, observer = TrainingControl(), QueuedReports(identity, loop, queue)
        writer = asyncio.create_task(
            write_reports(self._store, dispatch.dispatch_id, start.context, queue),
            name=f"reports-{dispatch.dispatch_id}",
        )
        with logging_for(observer.log_line):  # the run's task (and its thread) log into its reports
            thread = asyncio.ensure_future(self._prepare_and_train(dispatch, observer, control))
        run = self._runs[dispatch.dispatch_id] = _Run(identity, control, writer, thread)
        writer.add_done_callback(lambda _: self._ended(run))
        log.info(
            "run started: dispatch %s, job %s attempt %d, resume from %s",
            dispatch.dispatch_id,
            dispatch.job_id,
            dispatch.attempt,
            dispatch.checkpoint_uri or "the start",
        )

    async def _prepare_and_train(
        self, dispatch: JobDispatched, observer: QueuedReports, control: TrainingControl
    ) -> None:
        log.info(
            "%s of job %s, attempt %d, on trainer %s (dispatch %s)",
            dispatch.kind,
            dispatch.job_id,
            dispatch.attempt,
            self._settings.trainer_id,
            dispatch.dispatch_id,
        )
        try:
            refuse_local_files(dispatch.dataset_uri, self._settings.allow_file_datasets)
            observer.phase("fetching", _fetching_message(dispatch))
            artifact = await self._model_artifact(dispatch)  # first: a refused base fails before any data
            dataset_uri = await self._training_uri(dispatch.dataset_uri)
        except Exception as error:
            report_failure(observer, error, _run_folder_or_none(dispatch, self._settings))
            observer.close()
            return
        work: RunWork = evaluate if dispatch.kind == "evaluation" else train
        loop = asyncio.get_running_loop()
        in_run = contextvars.copy_context()  # the thread logs into the run's reports too
        observer.heard_at = time.monotonic()  # the thread's silence counts from its start
        thread = loop.run_in_executor(
            self._executor,
            in_run.run,
            work,
            dispatch,
            self._settings,
            observer,
            control,
            dataset_uri,
            artifact,
        )
        if await stalls.hung(thread, observer, self._settings.training_stall_timeout_s):
            self.stalled.add(dispatch.dispatch_id)
            control.request_cancel()  # after its reports ended: should the thread wake, it stops
            self.stall.set()

    def control(self, decision: ControlRun) -> None:
        """Pass a pause or cancel request to a run (no-op when it already ended)."""
        run = self._runs.get(decision.dispatch_id)
        if run is None:
            return
        log.info("%s requested: dispatch %s", decision.action, decision.dispatch_id)
        if decision.action == "pause":
            run.control.request_pause()
        else:
            run.control.request_cancel()

    async def shutdown(self) -> None:
        """Cancel every run and wait for its thread, writing no further report.

        Deliberately silent: the dispatch drops out of the heartbeats, its lease
        lapses, and job-svc queues the job again from its last recorded checkpoint.
        A run whose thread hung first gets up to STALL_FLUSH_S to write the line saying so, and
        no hung thread is waited for (the worker exits then; worker/stalls.py).
        """
        runs = list(self._runs.values())
        for run in runs:
            run.control.request_cancel()
            run.thread.cancel()  # stops a dataset fetch (or a watch); a training thread stops on the control
            if run.identity.dispatch_id not in self.stalled:
                run.writer.cancel()
        hung = [run.writer for run in runs if run.identity.dispatch_id in self.stalled]
        if hung:  # their last line says why the worker stops
            await asyncio.wait(hung, timeout=STALL_FLUSH_S)
            for writer in hung:
                writer.cancel()
        await asyncio.gather(*(r.writer for r in runs), *(r.thread for r in runs), return_exceptions=True)
        self._executor.shutdown(wait=not self.stalled, cancel_futures=True)

    def _ended(self, run: _Run) -> None:
        dispatch_id = run.identity.dispatch_id
        self._runs.pop(dispatch_id, None)
        if run.writer.cancelled():
            log.info("run stopped: dispatch %s, no report written (shutdown)", dispatch_id)
        elif (error := run.writer.exception()) is not None:
            run.control.request_cancel()  # training nobody hears of is wasted; the lease lapses instead
            log.error("run stopped: dispatch %s, its reports could not be written: %r", dispatch_id, error)
        else:
            last = run.writer.result()
            log.info("run ended: dispatch %s, %s", dispatch_id, last.type_name if last else "no report")
        if dispatch_id not in self.stalled:  # a hung thread keeps its slot until the worker exits
            self._on_finished(dispatch_id)


def _fetching_message(dispatch: JobDispatched) -> str:
    what = f"dataset {dispatch.dataset_uri}"
    if dispatch.model_input is not None:
        what = f"model version {dispatch.model_input.version_id} and {what}"
    return f"fetching {what}"


def train(
    dispatch: JobDispatched,
    settings: TrainerSettings,
    observer: QueuedReports,
    control: TrainingControl,
    dataset_uri: str | None = None,
    base_artifact: Path | None = None,
) -> None:
    """The whole run, on the training thread: train (from `base_artifact`'s weights when fine-tuning),
    queue the last report, end the reports."""
    try:
        spec = training_spec(dispatch, settings, dataset_uri, base_artifact)
        outcome = run_training(spec, observer, control)
        observer.put([outcome_report(observer.run, outcome)])
    except Exception as error:
        report_failure(observer, error, _run_folder_or_none(dispatch, settings))
    finally:
        observer.close()


def evaluate(
    dispatch: JobDispatched,
    settings: TrainerSettings,
    observer: QueuedReports,
    control: TrainingControl,
    dataset_uri: str,
    artifact: Path | None,
) -> None:
    """The whole evaluation run, on the training thread: `TrainingStarted`, then `EvaluationCompleted`
    with the artifact's figures on the dispatch's split (`val` unless it names one).

    The engine's evaluation cannot stop halfway: a pause or cancel that arrives before it starts or
    while it runs ends the run with `TrainingCancelled` instead of its figures.
    """
    try:
        if artifact is None:
            raise TrainingError(f"evaluation dispatch {dispatch.dispatch_id} names no model version")
        device = resolve_device(settings.device)
        observer.put([evaluation_started_report(observer.run, str(device))])
        split = dispatch.evaluation_split or DEFAULT_EVALUATION_SPLIT
        evaluation = None
        if not _stop_requested(control):
            evaluation = evaluate_model(
                artifact,
                dataset_uri,
                split,
                device=str(device),
                memory_budget_bytes=settings.run_memory_budget_bytes,
            )
        if evaluation is None or _stop_requested(control):
            observer.put([outcome_report(observer.run, Cancelled())])
        else:
            observer.put([evaluated_report(observer.run, evaluation, dispatch.dataset_uri, split)])
    except Exception as error:
        report_failure(observer, error, _run_folder_or_none(dispatch, settings))
    finally:
        observer.close()


def _stop_requested(control: TrainingControl) -> bool:
    return control.cancel_requested or control.pause_requested


def report_failure(observer: QueuedReports, error: Exception, run_folder: Path | None) -> None:
    """Log why a run failed and queue its `TrainingFailed` (call from an `except` block).

    A reason too long for the event is kept whole in `<run folder>/failure.txt`, which the
    (truncated) reason names.
    """
    if isinstance(error, TrainingError | ValueError):
        log.error("run failed: dispatch %s: %s", observer.run.dispatch_id, _short(str(error)))
    else:  # a bug, not the job's fault: still a report, so job-svc can decide
        log.exception("run failed unexpectedly: dispatch %s", observer.run.dispatch_id)
    kept = keep_failure_text(failure_reason(error), run_folder)
    observer.put([failure_report(observer.run, error, full_text_at=kept)])


def keep_failure_text(reason: str, run_folder: Path | None) -> str | None:
    """The path of `<run folder>/failure.txt` holding `reason` when it is longer than an event holds;
    None when it fits, or when it could not be written (the event then says only "truncated")."""
    if len(reason) <= REASON_MAX_CHARS or run_folder is None:
        return None
    path = run_folder / FAILURE_TEXT_FILE
    try:
        run_folder.mkdir(parents=True, exist_ok=True)
        path.write_text(reason + "\n", encoding="utf-8")
    except OSError as error:
        log.error("could not keep the full failure text in %s: %s", path, error)
        return None
    return str(path)


def _run_folder_or_none(dispatch: JobDispatched, settings: TrainerSettings) -> Path | None:
    try:
        return run_folder(dispatch, settings)
    except ValueError:  # an id that cannot name a folder: that is the failure being reported
        return None


def _short(text: str) -> str:
    return truncate_text(text, REASON_MAX_CHARS)
