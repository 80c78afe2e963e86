"""Cancel and pause take effect before the next optimizer step, whichever thread asks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from trainer_samples import RecordingObserver, SpecFactory

from modelyard_trainer.training import Cancelled, Paused, Progress, TrainingControl, run_training
from modelyard_trainer.training.optimizer_steps import OptimizerSteps


@pytest.fixture
def step_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every optimizer step any run takes during the test."""
    taken = [0]
    original = OptimizerSteps.take

    def counting(self: OptimizerSteps, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        taken[0] += 1
        return original(self, inputs, targets)

    monkeypatch.setattr(OptimizerSteps, "take", counting)
    return taken


def test_cancel_requested_during_a_step_report_stops_before_the_next_step(
    digits_npz: Path, make_spec: SpecFactory, step_count: list[int]
) -> None:
    control = TrainingControl()
    observer = RecordingObserver()

    def cancel_at_step_3(progress: Progress) -> None:
        if progress.step == 3:
            control.request_cancel()

    observer.on_progress = cancel_at_step_3
    spec = make_spec("image_classifier", digits_npz, channels=4, progress_interval_s=0)

    outcome = run_training(spec, observer, control)

    assert outcome == Cancelled()
    assert step_count[0] == 3
    assert [p.step for p in observer.progress] == [1, 2, 3]
    assert observer.epochs == []
    assert not (spec.workdir / "model.pt").exists()


def test_cancel_from_another_thread_stops_within_one_step(
    digits_npz: Path, make_spec: SpecFactory, step_count: list[int]
) -> None:
    control = TrainingControl()
    observer = RecordingObserver()
    reached, cancelled = threading.Event(), threading.Event()

    def wait_for_the_canceller(progress: Progress) -> None:
        if progress.step == 5:
            reached.set()
            assert cancelled.wait(timeout=10)

    observer.on_progress = wait_for_the_canceller

    def canceller() -> None:
        assert reached.wait(timeout=30)
        control.request_cancel()
        cancelled.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    outcome = run_training(
        make_spec("image_classifier", digits_npz, channels=4, progress_interval_s=0), observer, control
    )
    thread.join(timeout=10)

    assert outcome == Cancelled()
    assert step_count[0] == 5


def test_cancel_wins_over_pause(digits_npz: Path, make_spec: SpecFactory, step_count: list[int]) -> None:
    control = TrainingControl()
    control.request_pause()
    control.request_cancel()

    outcome = run_training(
        make_spec("image_classifier", digits_npz, channels=4), RecordingObserver(), control
    )

    assert outcome == Cancelled()
    assert step_count[0] == 0


def test_pause_saves_a_checkpoint_at_the_step_it_stopped_before(
    digits_npz: Path, make_spec: SpecFactory, step_count: list[int]
) -> None:
    control = TrainingControl()
    observer = RecordingObserver()
    observer.on_progress = lambda progress: control.request_pause() if progress.step == 4 else None

    outcome = run_training(
        make_spec("image_classifier", digits_npz, channels=4, progress_interval_s=0), observer, control
    )

    assert isinstance(outcome, Paused)
    assert (outcome.checkpoint.epochs_done, outcome.checkpoint.step) == (0, 4)
    assert step_count[0] == 4
    assert outcome.checkpoint.path.is_file()
