"""Choosing the device and putting the dataset on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from modelyard_trainer.training.errors import TrainingError

# The datasets are small; keeping them whole on the GPU replaces a DataLoader
# with index slicing. A quarter of free memory leaves room for the model,
# activations and the caching allocator.
_DEVICE_SHARE = 0.25


def resolve_device(requested: str | None) -> torch.device:
    """`requested` ("cpu", "cuda", "cuda:1" …), or CUDA when available and nothing was asked for."""
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise TrainingError(f"unknown device {requested!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {requested!r} was asked for, but CUDA is not available on this trainer")
    if device.type not in ("cpu", "cuda"):
        raise TrainingError(f"device {requested!r} is not supported; use cpu or cuda")
    return device


@dataclass(frozen=True)
class PlacedSplit:
    """One split's inputs and targets, on the training device when they fit there, else in CPU memory."""

    inputs: torch.Tensor
    targets: torch.Tensor
    device: torch.device
    on_device: bool  # batches need no host-to-device copy (a field: it is read every step)

    @property
    def samples(self) -> int:
        """Rows in the split."""
        return int(self.inputs.shape[0])

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of `rows` (indices on the same device as the data), on the training device."""
        inputs, targets = self.inputs[rows], self.targets[rows]
        if self.on_device:
            return inputs, targets
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


def place_splits(splits: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> list[PlacedSplit]:
    """Every split on `device` if together they fit in a share of its free memory, else pinned on CPU."""
    size = sum(t.element_size() * t.nelement() for split in splits for t in split)
    fits = device.type == "cpu" or size <= _DEVICE_SHARE * torch.cuda.mem_get_info(device)[0]
    if fits:
        return [PlacedSplit(x.to(device), y.to(device), device, True) for x, y in splits]
    return [PlacedSplit(x.pin_memory(), y.pin_memory(), device, False) for x, y in splits]
