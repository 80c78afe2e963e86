"""Progress and epoch reports folded into what they leave on a job's row (pure, no I/O).

Applying N reports one by one is N UPDATEs of the same few rows; folding them first gives one row of
values per dispatch that one statement applies. The fold is exactly the sequential result: the last
report sets epoch, step, loss, throughput and progress; `eta_s` comes from the last progress report
(an epoch report leaves it alone); `epochs_done` only grows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelyard_events.schemas.training import EpochCompleted, TrainingProgressed

LiveReport = TrainingProgressed | EpochCompleted
LIVE_REPORTS = (TrainingProgressed, EpochCompleted)


@dataclass(frozen=True)
class LiveProgress:
    """The values reports leave on the row of one (job, attempt, dispatch).

    progress = progress_steps / max(epochs_total × progress_steps_per_epoch, 1), with epochs_total
    taken from the row (the trainer's TrainingStarted set it).
    """

    job_id: str
    attempt: int
    dispatch_id: str
    epoch: int
    step: int | None  # None: the epoch ended (the row's steps_per_epoch)
    loss: float
    samples_per_s: float
    progress_steps: int
    progress_steps_per_epoch: int
    eta_s: float | None
    eta_reported: bool
    epochs_done: int | None  # None: no epoch ended in these reports


def fold_live_progress(reports: Iterable[LiveReport]) -> list[LiveProgress]:
    """One LiveProgress per dispatch, equal to applying `reports` in order.

    Per dispatch it keeps only what the sequence leaves behind (the last report, the last
    progress report's ETA, the highest epoch ended) and builds one value at the end: a replay
    folds a million reports, and a value per report cost more than the rest of the fold.
    """
    last: dict[tuple[str, int, str], LiveReport] = {}
    eta: dict[tuple[str, int, str], float | None] = {}
    done: dict[tuple[str, int, str], int] = {}
    for report in reports:
        key = (report.job_id, report.attempt, report.dispatch_id)
        last[key] = report
        if isinstance(report, TrainingProgressed):
            eta[key] = report.eta_s
        else:
            done[key] = max(done.get(key, report.epoch), report.epoch)
    return [_folded(report, key in eta, eta.get(key), done.get(key)) for key, report in last.items()]


def _folded(
    report: LiveReport, eta_reported: bool, eta_s: float | None, epochs_done: int | None
) -> LiveProgress:
    if isinstance(report, TrainingProgressed):
        return LiveProgress(
            report.job_id,
            report.attempt,
            report.dispatch_id,
            epoch=report.epoch,
            step=report.step,
            loss=report.loss,
            samples_per_s=report.samples_per_s,
            progress_steps=(report.epoch - 1) * report.steps_total + report.step,
            progress_steps_per_epoch=report.steps_total,
            eta_s=report.eta_s,
            eta_reported=True,
            epochs_done=epochs_done,
        )
    return LiveProgress(
        report.job_id,
        report.attempt,
        report.dispatch_id,
        epoch=report.epoch,
        step=None,
        loss=report.train_loss,
        samples_per_s=report.samples_per_s,
        progress_steps=report.epoch,
        progress_steps_per_epoch=1,
        eta_s=eta_s,
        eta_reported=eta_reported,
        epochs_done=epochs_done,
    )
