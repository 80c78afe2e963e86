"""Progress is throttled and measured; batch order and data split are pure functions of their seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from trainer_samples import RecordingObserver, SpecFactory

from modelyard_trainer.training import TrainingControl, run_training
from modelyard_trainer.training.batching import batch_order
from modelyard_trainer.training.data import split_indices
from modelyard_trainer.training.gpu import GpuMonitor
from modelyard_trainer.training.progress import ProgressMeter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_measures_samples_per_second_loss_and_eta_since_the_last_report() -> None:
    clock = FakeClock()
    meter = ProgressMeter(interval_s=1.0, epochs_total=3, train_samples=1000, clock=clock)
    meter.start_epoch(samples_done=0, loss_sum=0.0)
    clock.now += 0.5
    assert not meter.due()
    clock.now += 0.5

    assert meter.due()
    progress = meter.report(epoch=1, step=4, steps_total=10, samples_done=400, loss_sum=800.0)

    assert (progress.samples_per_s, progress.loss) == (400.0, 2.0)
    assert progress.eta_s == pytest.approx((600 + 2 * 1000) / 400)
    assert not meter.due()  # the report started a new window
    clock.now += 2.0
    later = meter.report(epoch=1, step=10, steps_total=10, samples_done=1000, loss_sum=1100.0)
    assert (later.samples_per_s, later.loss) == (300.0, 0.5)


def test_reports_are_throttled_to_the_interval(
    digits_npz: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    spec = make_spec("image_classifier", digits_npz, channels=4, epochs=2, progress_interval_s=3600)

    run_training(spec, observer, TrainingControl())

    assert observer.progress == []
    assert len(observer.epochs) == 2
    for result, _ in observer.epochs:
        assert result.samples_per_s > 0
        assert result.duration_s > 0
        assert (result.gpu_utilization_pct, result.gpu_memory_bytes) == (None, None)  # on CPU: no reading


def test_every_step_is_reported_when_the_interval_is_zero(
    digits_npz: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    spec = make_spec("image_classifier", digits_npz, channels=4, epochs=1, progress_interval_s=0)

    run_training(spec, observer, TrainingControl())

    steps = observer.starts[0].steps_per_epoch
    assert [p.step for p in observer.progress] == list(range(1, steps + 1))
    assert all(p.samples_per_s > 0 and p.eta_s is not None for p in observer.progress)
    assert observer.progress[-1].eta_s == 0.0


def test_batch_order_depends_only_on_seed_and_epoch() -> None:
    torch.manual_seed(1)
    first = batch_order(seed=5, epoch_index=2, samples=100)
    torch.manual_seed(2)  # the global RNG has no say

    assert torch.equal(first, batch_order(seed=5, epoch_index=2, samples=100))
    assert not torch.equal(first, batch_order(seed=5, epoch_index=3, samples=100))
    assert sorted(first.tolist()) == list(range(100))


def test_split_is_disjoint_complete_and_seeded() -> None:
    train, val = split_indices(count=50, val_fraction=0.2, seed=3)

    assert len(val) == 10
    assert sorted(train.tolist() + val.tolist()) == list(range(50))
    again_train, _ = split_indices(count=50, val_fraction=0.2, seed=3)
    assert torch.equal(train, again_train)


def test_gpu_monitor_reads_nothing_on_cpu() -> None:
    with GpuMonitor(torch.device("cpu")) as gpu:
        gpu.take_utilization()
        reading = gpu.epoch_reading()

    assert not gpu.available
    assert (reading.utilization_pct, reading.memory_bytes) == (None, None)
