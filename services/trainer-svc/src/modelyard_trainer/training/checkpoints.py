"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model, optimizer and AMP scaler state, the position
(`epochs_done` whole epochs plus `step` steps into the next), the partial loss
of an interrupted epoch and the RNG state, so dropout draws the same masks
after a resume. Batch order needs no saved state: it is a pure function of
(seed, epoch) (see `batch_order`). Only tensors and primitives are stored, so
`torch.load(weights_only=True)` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelyard_trainer.training.contracts import CheckpointInfo
from modelyard_trainer.training.durable_files import save_atomically
from modelyard_trainer.training.errors import TrainingError

CHECKPOINT_FORMAT = "modelyard.checkpoint/1"


@dataclass(frozen=True)
class ResumePoint:
    """Where a run stands between two steps."""

    epochs_done: int
    step: int  # steps of epoch `epochs_done + 1` already taken
    epoch_loss_sum: float = 0.0  # sum of loss × batch size over those steps
    epoch_samples: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # of the last completed epoch


@dataclass(frozen=True)
class RunIdentity:
    """What must match for a checkpoint to be resumed by a run: family, settings and data shape."""

    family: str
    hyperparameters: dict[str, Any]  # `epochs` may differ: a resume may extend a run
    data_signature: dict[str, Any]
    origin: dict[str, Any] = field(default_factory=dict)  # job_id, attempt: recorded, not compared

    def mismatch(self, other: RunIdentity) -> str | None:
        """Why a checkpoint written by `other` cannot continue this run, or None."""
        if other.family != self.family:
            return f"it was written for family {other.family!r}, this run is {self.family!r}"
        ours, theirs = dict(self.hyperparameters), dict(other.hyperparameters)
        ours.pop("epochs", None)
        theirs.pop("epochs", None)
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if changed:
            return f"hyperparameters differ: {', '.join(changed)}"
        if other.data_signature != self.data_signature:
            return f"it was made on other data ({other.data_signature}, now {self.data_signature})"
        return None


def checkpoint_path(workdir: Path, epochs_done: int, step: int) -> Path:
    """Where the checkpoint of a position goes; names sort in training order."""
    return workdir / "checkpoints" / f"epoch{epochs_done:04d}-step{step:06d}.pt"


def save_checkpoint(
    path: Path,
    identity: RunIdentity,
    point: ResumePoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> CheckpointInfo:
    """Write the checkpoint atomically and return its path, SHA-256 and size."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "family": identity.family,
        "hyperparameters": identity.hyperparameters,
        "data_signature": identity.data_signature,
        "origin": dict(identity.origin),
        "epochs_done": point.epochs_done,
        "step": point.step,
        "epoch_loss_sum": point.epoch_loss_sum,
        "epoch_samples": point.epoch_samples,
        "metrics": dict(point.metrics),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": _cuda_rng_state(model),
    }
    written = save_atomically(payload, path)
    return CheckpointInfo(written.path, written.sha256, written.size_bytes, point.epochs_done, point.step)


def restore_checkpoint(
    path: Path,
    identity: RunIdentity,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> ResumePoint:
    """Load a checkpoint into the live objects and RNG; TrainingError if it does not belong to this run."""
    payload = _read(path)
    written_for = RunIdentity(payload["family"], payload["hyperparameters"], payload["data_signature"])
    problem = identity.mismatch(written_for)
    if problem:
        raise TrainingError(f"cannot resume from checkpoint {path.name}: {problem}")
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scaler.load_state_dict(payload["scaler"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise TrainingError(f"cannot resume from checkpoint {path.name}: {error}") from None
    torch.set_rng_state(payload["rng_cpu"])
    device = next(model.parameters()).device
    if device.type == "cuda" and payload["rng_cuda"] is not None:
        torch.cuda.set_rng_state(payload["rng_cuda"], device)
    return ResumePoint(
        int(payload["epochs_done"]),
        int(payload["step"]),
        float(payload["epoch_loss_sum"]),
        int(payload["epoch_samples"]),
        {str(k): float(v) for k, v in payload["metrics"].items()},
    )


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TrainingError(f"checkpoint to resume from not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise TrainingError(f"checkpoint {path.name} is unreadable: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path.name} is not a Modelyard checkpoint ({CHECKPOINT_FORMAT})")
    return payload


def _cuda_rng_state(model: nn.Module) -> torch.Tensor | None:
    device = next(model.parameters()).device
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None
