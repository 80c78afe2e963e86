"""The network of each model family, rebuilt from an artifact's config before its weights are loaded.

Training creates them the same way (`build_model`), so a state dict always fits the network
its config describes; losses and optimizers are training-only and stay in the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from modelyard_events.schemas.hyperparameters import (
    CommonHyperparameters,
    ImageClassifierHyperparameters,
    TabularHyperparameters,
)

REGRESSOR = "tabular_regressor"


class SmallCnn(nn.Sequential):
    """Two conv blocks (`channels`, then `2*channels` filters; BatchNorm, ReLU, 2×2 max-pool, dropout)
    and a linear head; adaptive pooling makes the head's size independent of the image size."""

    def __init__(self, in_channels: int, channels: int, classes: int, dropout: float) -> None:
        super().__init__(
            *_conv_block(in_channels, channels, dropout),
            *_conv_block(channels, 2 * channels, dropout),
            nn.AdaptiveAvgPool2d((2, 2)),
            nn.Flatten(),
            nn.Linear(2 * channels * 4, classes),
        )


def _conv_block(inputs: int, outputs: int, dropout: float) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, kernel_size=3, padding=1, bias=False),  # BatchNorm supplies the bias
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        # ceil_mode keeps odd and tiny images (down to 1×1) from pooling away to nothing.
        nn.MaxPool2d(2, ceil_mode=True),
        nn.Dropout(dropout),
    ]


class Mlp(nn.Sequential):
    """Fully connected layers of `hidden_layers` widths with ReLU and dropout, then a linear output."""

    def __init__(self, features: int, hidden_layers: Sequence[int], outputs: int, dropout: float) -> None:
        layers: list[nn.Module] = []
        width = features
        for hidden in hidden_layers:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        super().__init__(*layers, nn.Linear(width, outputs))


def build_model(
    family: str, hyperparameters: CommonHyperparameters, input_shape: Sequence[int], classes: int | None
) -> nn.Module:
    """A new network for `family`, initialized from torch's global RNG; `classes` None = regression."""
    outputs = classes if classes is not None else 1
    if isinstance(hyperparameters, ImageClassifierHyperparameters):
        return SmallCnn(input_shape[0], hyperparameters.channels, outputs, hyperparameters.dropout)
    if isinstance(hyperparameters, TabularHyperparameters):
        return Mlp(input_shape[0], hyperparameters.hidden_layers, outputs, hyperparameters.dropout)
    raise TypeError(f"no model for {family!r} with {type(hyperparameters).__name__}")
