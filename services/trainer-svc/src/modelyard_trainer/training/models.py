"""The losses and optimizers of each model family; the networks live in modelyard_inference.networks
(an edge rebuilds them without the trainer) and are re-exported here for the trainer's call sites."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from modelyard_events.schemas.hyperparameters import CommonHyperparameters
from modelyard_inference.networks import REGRESSOR as REGRESSOR
from modelyard_inference.networks import Mlp as Mlp
from modelyard_inference.networks import SmallCnn as SmallCnn
from modelyard_inference.networks import build_model as build_model

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(family: str) -> LossFunction:
    """Cross-entropy on class indices (classifiers); MSE on the standardized target (regressors)."""
    if family == REGRESSOR:
        return lambda outputs, targets: nn.functional.mse_loss(outputs.squeeze(-1), targets)
    return nn.functional.cross_entropy


def build_optimizer(model: nn.Module, hyperparameters: CommonHyperparameters) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with momentum, with the job's lr and weight decay."""
    hp = hyperparameters
    params = model.parameters()
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    if hp.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    return torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
