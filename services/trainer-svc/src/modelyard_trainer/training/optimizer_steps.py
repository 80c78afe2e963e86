"""One optimizer step: forward, loss, backward, update — under AMP with loss scaling on CUDA."""

from __future__ import annotations

import torch
from torch import nn

from modelyard_trainer.training.evaluation import autocast
from modelyard_trainer.training.models import LossFunction


class OptimizerSteps:
    """The model, its optimizer and AMP scaler, and the step that updates them.

    On CUDA (`amp`) the forward runs under float16 autocast and the loss is
    scaled by a GradScaler (steps whose gradients overflow are skipped, as
    torch.amp prescribes); on CPU everything is plain fp32.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFunction,
        device: torch.device,
        *,
        amp: bool,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.device = device
        self.amp = amp
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp)
        model.train()

    def take(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Run one step on a batch; returns the batch's mean loss, detached and still on the device."""
        with autocast(self.device, self.amp):
            loss = self.loss_fn(self.model(inputs), targets)
        self.optimizer.zero_grad(set_to_none=True)
        if self.amp:
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            self.optimizer.step()
        return loss.detach()
