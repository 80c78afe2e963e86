"""Folding progress and epoch reports gives what applying them one by one gives (property test)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelyard_events.schemas.training import EpochCompleted, TrainingProgressed
from modelyard_job.projections.live_progress import LiveProgress, LiveReport, fold_live_progress

STEPS = 10


def _fields(dispatch: str, epoch: int) -> dict[str, Any]:
    return {
        "job_id": f"job-{dispatch}",
        "attempt": 1,
        "dispatch_id": dispatch,
        "trainer_id": "t",
        "epoch": epoch,
    }


reports = st.lists(
    st.one_of(
        st.builds(
            lambda d, e, s, eta: TrainingProgressed(
                **_fields(d, e), step=s, steps_total=STEPS, loss=s / 10, samples_per_s=100.0 + s, eta_s=eta
            ),
            st.sampled_from(["a", "b"]),
            st.integers(1, 5),
            st.integers(0, STEPS),
            st.none() | st.floats(0, 100),
        ),
        st.builds(
            lambda d, e: EpochCompleted(
                **_fields(d, e),
                train_loss=1 / e,
                val_loss=2 / e,
                val_accuracy=None,
                metrics={},
                samples_per_s=200.0 + e,
                duration_s=1.0,
                gpu_utilization_pct=None,
                gpu_memory_bytes=None,
            ),
            st.sampled_from(["a", "b"]),
            st.integers(1, 5),
        ),
    ),
    min_size=1,
    max_size=30,
)


def one_by_one(reports: list[LiveReport]) -> dict[str, dict[str, Any]]:
    """The row columns each report's own UPDATE sets, applied in order (epochs_total = 5)."""
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        row = rows.setdefault(report.dispatch_id, {"epochs_done": 0, "eta_s": None})
        if isinstance(report, TrainingProgressed):
            progress = ((report.epoch - 1) * STEPS + report.step) / max(5 * STEPS, 1)
            row.update(epoch=report.epoch, step=report.step, loss=report.loss, eta_s=report.eta_s)
            row.update(samples_per_s=report.samples_per_s, progress=progress)
        else:
            row.update(epoch=report.epoch, step=STEPS, loss=report.train_loss, progress=report.epoch / 5)
            row.update(samples_per_s=report.samples_per_s, epochs_done=max(row["epochs_done"], report.epoch))
    return rows


def as_row(folded: LiveProgress) -> dict[str, Any]:
    """What the views' UPDATE makes of a folded value on a row with epochs_done 0 and no ETA."""
    return {
        "epoch": folded.epoch,
        "step": STEPS if folded.step is None else folded.step,
        "loss": folded.loss,
        "samples_per_s": folded.samples_per_s,
        "eta_s": folded.eta_s if folded.eta_reported else None,
        "epochs_done": max(0, folded.epochs_done or 0),
        "progress": folded.progress_steps / max(5 * folded.progress_steps_per_epoch, 1),
    }


@given(reports)
def test_folded_reports_leave_each_dispatch_as_applying_them_in_order_does(
    sequence: list[LiveReport],
) -> None:
    folded = {row.dispatch_id: as_row(row) for row in fold_live_progress(sequence)}

    assert folded == one_by_one(sequence)
