"""Validation: loss and the family's metrics over a whole split, with one device sync at the end."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn

from modelyard_trainer.training.device import PlacedSplit
from modelyard_trainer.training.models import LossFunction

# Validation holds no activations for backward, so it can take bigger batches than training.
_MIN_EVAL_BATCH = 1024


@dataclass(frozen=True)
class Evaluation:
    """Mean loss over the split and metrics: val_accuracy for classifiers; val_mae, val_rmse (target
    units) and val_r2 for regressors."""

    loss: float
    metrics: dict[str, float]

    @property
    def accuracy(self) -> float | None:
        """Share of correct predictions, or None for a regressor."""
        return self.metrics.get("val_accuracy")


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[object]:
    """float16 autocast on CUDA when AMP is on; a no-op (plain fp32) otherwise."""
    if amp:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def evaluate(
    model: nn.Module,
    split: PlacedSplit,
    loss_fn: LossFunction,
    *,
    classifier: bool,
    amp: bool,
    batch_size: int,
    target_std: float | None,
) -> Evaluation:
    """Validation loss and metrics of `model` on `split`; the model is left in training mode."""
    model.eval()
    size = max(batch_size, _MIN_EVAL_BATCH)
    rows = torch.arange(split.samples, device=split.inputs.device)
    with torch.inference_mode():
        totals = torch.zeros(4, dtype=torch.float64, device=split.device)
        for start in range(0, split.samples, size):
            inputs, targets = split.batch(rows[start : start + size])
            with autocast(split.device, amp):
                outputs = model(inputs)
            outputs = outputs.float()
            totals[0] += loss_fn(outputs, targets).double() * len(targets)
            totals[1:] += _batch_sums(outputs, targets, classifier)
    model.train()
    loss_sum, first, second, third = totals.tolist()  # the one sync of the validation
    count = split.samples
    if classifier:
        return Evaluation(loss_sum / count, {"val_loss": loss_sum / count, "val_accuracy": first / count})
    return _regression(loss_sum / count, first, second, third, count, target_std or 1.0)


def _batch_sums(outputs: torch.Tensor, targets: torch.Tensor, classifier: bool) -> torch.Tensor:
    if classifier:
        correct = (outputs.argmax(dim=1) == targets).sum().double()
        return torch.stack([correct, correct.new_zeros(()), correct.new_zeros(())])
    error = outputs.squeeze(-1).double() - targets.double()
    target = targets.double()
    # abs error, and the target's sum and sum of squares for R² (squared error is the loss itself)
    return torch.stack([error.abs().sum(), target.sum(), (target * target).sum()])


def _regression(
    mse: float, abs_sum: float, target_sum: float, target_sq_sum: float, count: int, target_std: float
) -> Evaluation:
    variance = target_sq_sum / count - (target_sum / count) ** 2
    r2 = 1.0 - mse / variance if variance > 0 else float("nan")
    metrics = {
        "val_loss": mse,
        "val_mae": abs_sum / count * target_std,
        "val_rmse": math.sqrt(mse) * target_std,
    }
    if math.isfinite(r2):
        metrics["val_r2"] = r2
    return Evaluation(mse, metrics)
