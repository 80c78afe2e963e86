"""`run_training`: one job attempt from dataset URI to artifact, synchronous, on CUDA (AMP) or CPU."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from modelyard_events.schemas.hyperparameters import HYPERPARAMETERS
from modelyard_trainer.training.artifacts import write_artifact
from modelyard_trainer.training.batching import batch_order, batch_size_at, steps_per_epoch
from modelyard_trainer.training.checkpoints import (
    ResumePoint,
    RunIdentity,
    checkpoint_path,
    restore_checkpoint,
    save_checkpoint,
)
from modelyard_trainer.training.contracts import (
    Cancelled,
    CheckpointInfo,
    Completed,
    EpochResult,
    Outcome,
    Paused,
    StartInfo,
    TrainingObserver,
    TrainingSpec,
)
from modelyard_trainer.training.control import TrainingControl
from modelyard_trainer.training.data import CLASSIFIERS, TrainingData, load_training_data
from modelyard_trainer.training.device import place_splits, resolve_device
from modelyard_trainer.training.errors import TrainingError
from modelyard_trainer.training.evaluation import evaluate
from modelyard_trainer.training.fine_tuning import load_base_weights
from modelyard_trainer.training.gpu import GpuMonitor
from modelyard_trainer.training.models import build_model, build_optimizer, loss_function
from modelyard_trainer.training.optimizer_steps import OptimizerSteps
from modelyard_trainer.training.preprocessing import TabularScaling
from modelyard_trainer.training.progress import ProgressMeter

log = logging.getLogger(__name__)  # a run's lines: the worker keeps them with its reports (`yard jobs logs`)


def run_training(spec: TrainingSpec, observer: TrainingObserver, control: TrainingControl) -> Outcome:
    """Train `spec` to completion, or until `control` asks to pause or cancel.

    Guarantees: a checkpoint after every epoch (and on pause) that resumes the
    run exactly; pause and cancel take effect before the next optimizer step;
    every reported number is measured; a run with a `base_artifact` (and no
    checkpoint) starts from its weights. Raises TrainingDataError for unusable
    data, IncompatibleBaseError for a base that does not fit and TrainingError
    for anything else that stops the run.
    """
    _check(spec)
    device = resolve_device(spec.device)
    observer.phase("loading_data", f"loading the {spec.family} data into memory")
    data = load_training_data(spec.family, spec.dataset_uri, spec.hyperparameters, spec.memory_budget_bytes)
    log.info(
        "loaded %d training and %d validation samples of %s", len(data.train_y), len(data.val_y), spec.family
    )
    observer.phase("building_model", _building_message(spec, device))
    run = _Run.prepare(spec, data, device)
    point = _starting_point(spec, run, data)
    info = run.start_info(point)
    log.info(
        "model %s: %d parameters on %s%s; %d epochs of %d steps (batch size %d), from epoch %d step %d",
        type(run.steps.model).__name__,
        sum(p.numel() for p in run.steps.model.parameters()),
        info.device,
        " with mixed precision" if info.amp else "",
        info.epochs_total,
        info.steps_per_epoch,
        spec.hyperparameters.batch_size,
        info.start_epoch,
        info.start_step,
    )
    observer.started(info)
    with GpuMonitor(device) as gpu:
        try:
            return run.train(point, observer, control, gpu)
        except torch.OutOfMemoryError as error:
            raise TrainingError(
                f"out of {device.type} memory at batch_size {spec.hyperparameters.batch_size}; "
                f"lower batch_size (or channels / hidden_layers): {error}"
            ) from None


def _epoch_line(result: EpochResult, epochs: int) -> str:
    accuracy = "" if result.val_accuracy is None else f", val_accuracy {result.val_accuracy:.4f}"
    return (
        f"epoch {result.epoch}/{epochs}: train_loss {result.train_loss:.4f}, val_loss {result.val_loss:.4f}"
        f"{accuracy}, {result.samples_per_s:,.0f} samples/s, {result.duration_s:.1f} s"
    )


def _building_message(spec: TrainingSpec, device: torch.device) -> str:
    if spec.resume_from is not None:
        return f"building the model on {device.type} and restoring its checkpoint"
    if spec.base_artifact is not None:
        return f"building the model on {device.type} from the base version's weights"
    return f"building the model on {device.type}"


def _starting_point(spec: TrainingSpec, run: _Run, data: TrainingData) -> ResumePoint:
    """The checkpoint's position when resuming; else the start, with the base's weights when fine-tuning."""
    if spec.resume_from is not None:
        point = run.resume(spec.resume_from)
        log.info(
            "resumed from checkpoint %s: %d epochs done, step %d",
            spec.resume_from.name,
            point.epochs_done,
            point.step,
        )
        return point
    if spec.base_artifact is not None:
        load_base_weights(spec.base_artifact, run.steps.model, spec.family, data, spec.hyperparameters)
        log.info("starting from the base version's weights (%s)", spec.base_artifact.name)
    return ResumePoint(0, 0)


def _check(spec: TrainingSpec) -> None:
    expected = HYPERPARAMETERS.get(spec.family)
    if expected is None or type(spec.hyperparameters) is not expected:
        raise TrainingError(
            f"family {spec.family!r} cannot be trained with {type(spec.hyperparameters).__name__}; "
            "validate them with validate_hyperparameters(family, …)"
        )
    if spec.progress_interval_s < 0:
        raise TrainingError(f"progress_interval_s must be ≥ 0, not {spec.progress_interval_s}")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) so initialization is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class _EpochStop:
    """Where an epoch's step loop ended: after its last step (`reason` None) or before `step` on request."""

    reason: str | None
    step: int
    loss_sum: float  # of the whole epoch so far, including steps of an earlier run
    samples: int  # likewise
    ran_samples: int  # rows trained in this run, over `train_seconds`
    train_seconds: float


class _Run:
    """The live objects of one run and the epoch loop over them."""

    def __init__(
        self, spec: TrainingSpec, data: TrainingData, device: torch.device, steps: OptimizerSteps
    ) -> None:
        self.spec, self.data, self.device, self.steps = spec, data, device, steps
        self.hp = spec.hyperparameters
        origin = {"job_id": spec.job_id, "attempt": spec.attempt}
        self.identity = RunIdentity(spec.family, self.hp.model_dump(mode="json"), data.signature(), origin)
        self.train_split, self.val_split = place_splits(
            [(data.train_x, data.train_y), (data.val_x, data.val_y)], device
        )
        self.steps_total = steps_per_epoch(self.train_split.samples, self.hp.batch_size)
        self.classifier = spec.family in CLASSIFIERS

    @classmethod
    def prepare(cls, spec: TrainingSpec, data: TrainingData, device: torch.device) -> _Run:
        seed_everything(spec.hyperparameters.seed)
        classes = None if data.class_labels is None else len(data.class_labels)
        model = build_model(spec.family, spec.hyperparameters, data.input_shape, classes).to(device)
        optimizer = build_optimizer(model, spec.hyperparameters)
        steps = OptimizerSteps(
            model, optimizer, loss_function(spec.family), device, amp=device.type == "cuda"
        )
        return cls(spec, data, device, steps)

    def resume(self, checkpoint: Path) -> ResumePoint:
        """Restore the live objects from `checkpoint`; TrainingError if it cannot continue this run."""
        point = restore_checkpoint(
            checkpoint, self.identity, self.steps.model, self.steps.optimizer, self.steps.scaler
        )
        if point.epochs_done > self.hp.epochs:
            raise TrainingError(
                f"cannot resume from checkpoint {checkpoint.name}: it has {point.epochs_done} epochs done, "
                f"more than this run's epochs ({self.hp.epochs})"
            )
        return point

    def start_info(self, point: ResumePoint) -> StartInfo:
        return StartInfo(
            str(self.device),
            self.steps.amp,
            point.epochs_done + 1,
            point.step,
            self.hp.epochs,
            self.steps_total,
            self.train_split.samples,
            self.val_split.samples,
        )

    def train(
        self, point: ResumePoint, observer: TrainingObserver, control: TrainingControl, gpu: GpuMonitor
    ) -> Outcome:
        meter = ProgressMeter(self.spec.progress_interval_s, self.hp.epochs, self.train_split.samples)
        metrics = point.metrics
        saved: CheckpointInfo | None = None
        for epoch_index in range(point.epochs_done, self.hp.epochs):
            started = time.monotonic()
            stop = self._steps(epoch_index, point, observer, control, meter, gpu)
            if stop.reason == "cancel":
                log.info("cancelled before step %d of epoch %d", stop.step + 1, epoch_index + 1)
                return Cancelled()
            if stop.reason == "pause":
                if saved is not None and stop.step == 0:
                    log.info("paused after epoch %d (checkpoint %s)", epoch_index, saved.path.name)
                    return Paused(saved)  # paused right after an epoch: its checkpoint is this position
                at = ResumePoint(epoch_index, stop.step, stop.loss_sum, stop.samples, metrics)
                paused = self._checkpoint(at)
                log.info(
                    "paused at epoch %d, step %d (checkpoint %s)",
                    epoch_index + 1,
                    stop.step,
                    paused.path.name,
                )
                return Paused(paused)
            result, metrics = self._validate(epoch_index, stop, started, gpu)
            saved = self._checkpoint(ResumePoint(epoch_index + 1, 0, metrics=metrics))
            log.info("%s", _epoch_line(result, self.hp.epochs))
            observer.epoch_completed(result, saved)
            point = ResumePoint(epoch_index + 1, 0)
        artifact = write_artifact(
            self.spec.workdir,
            self.spec.family,
            self.identity.hyperparameters,
            self.data,
            self.steps.model,
            metrics,
        )
        log.info(
            "artifact written: %s, %d bytes, sha256 %s",
            artifact.path.name,
            artifact.size_bytes,
            artifact.sha256,
        )
        return Completed(
            artifact.path,
            artifact.sha256,
            artifact.size_bytes,
            metrics,
            self.hp.epochs,
            self.data.dataset_manifest_sha256,
        )

    def _steps(
        self,
        epoch_index: int,
        point: ResumePoint,
        observer: TrainingObserver,
        control: TrainingControl,
        meter: ProgressMeter,
        gpu: GpuMonitor,
    ) -> _EpochStop:
        samples_total, batch_size = self.train_split.samples, self.hp.batch_size
        order = batch_order(self.hp.seed, epoch_index, samples_total).to(self.train_split.inputs.device)
        # The loss stays on the device and is read only for reports: `.item()` every step would sync the GPU.
        loss_sum = torch.zeros((), device=self.device)
        samples, began = point.epoch_samples, time.monotonic()
        meter.start_epoch(samples, point.epoch_loss_sum)
        for step in range(point.step, self.steps_total):
            if control.cancel_requested or control.pause_requested:
                reason = "cancel" if control.cancel_requested else "pause"
                return _EpochStop(reason, step, point.epoch_loss_sum + loss_sum.item(), samples, 0, 0.0)
            rows = order[step * batch_size : (step + 1) * batch_size]
            count = batch_size_at(step, batch_size, samples_total)
            loss_sum.add_(self.steps.take(*self.train_split.batch(rows)), alpha=count)
            samples += count
            if meter.due():
                gpu.take_utilization()
                progress_sum = point.epoch_loss_sum + loss_sum.item()
                observer.progressed(
                    meter.report(epoch_index + 1, step + 1, self.steps_total, samples, progress_sum)
                )
        total = point.epoch_loss_sum + loss_sum.item()  # also waits for the GPU, so the clock below is true
        gpu.take_utilization()
        ran = samples - point.epoch_samples
        return _EpochStop(None, self.steps_total, total, samples, ran, time.monotonic() - began)

    def _validate(
        self, epoch_index: int, stop: _EpochStop, started: float, gpu: GpuMonitor
    ) -> tuple[EpochResult, dict[str, float]]:
        train_loss = stop.loss_sum / stop.samples
        scaling = self.data.scaling
        target_std = scaling.target_std if isinstance(scaling, TabularScaling) else None
        evaluation = evaluate(
            self.steps.model,
            self.val_split,
            self.steps.loss_fn,
            classifier=self.classifier,
            amp=self.steps.amp,
            batch_size=self.hp.batch_size,
            target_std=target_std,
        )
        if not (math.isfinite(train_loss) and math.isfinite(evaluation.loss)):
            raise TrainingError(
                f"training diverged in epoch {epoch_index + 1}: train loss {train_loss}, val loss "
                f"{evaluation.loss}; try a lower lr (now {self.hp.lr})"
            )
        metrics = {"train_loss": train_loss, **evaluation.metrics}
        reading = gpu.epoch_reading()
        result = EpochResult(
            epoch_index + 1,
            train_loss,
            evaluation.loss,
            evaluation.accuracy,
            metrics,
            stop.ran_samples / stop.train_seconds if stop.train_seconds > 0 else 0.0,
            time.monotonic() - started,
            reading.utilization_pct,
            reading.memory_bytes,
        )
        return result, metrics

    def _checkpoint(self, point: ResumePoint) -> CheckpointInfo:
        path = checkpoint_path(self.spec.workdir, point.epochs_done, point.step)
        return save_checkpoint(
            path, self.identity, point, self.steps.model, self.steps.optimizer, self.steps.scaler
        )
