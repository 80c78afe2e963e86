"""Caps on the hyperparameters that size a run's memory, checked at CreateJob (issue 11, item 3).

The family schemas (modelyard_events.schemas.hyperparameters) say what a value can mean; these caps
say what this platform agrees to run: a job whose model or batch could not fit a worker is refused
up front, naming the field and the cap, instead of killing worker after worker (out of memory).
With the caps an MLP's hidden layers hold at most 7 × 2048² ≈ 29 M weights (≈ 0.5 GB with Adam's
state) and a batch at most 4096 samples; what the data itself needs is checked by the trainer
against its memory budget before it loads a version.
"""

from __future__ import annotations

from typing import Any

MAX_BATCH_SIZE = 4096
MAX_HIDDEN_LAYERS = 8
MAX_HIDDEN_UNITS = 2048  # per hidden layer
MAX_CHANNELS = 256  # the CNN's first block; the second has twice as many


def hyperparameter_cap_problems(filled: dict[str, Any]) -> dict[str, str]:
    """`hyperparameters.<field>` → what exceeds its cap (the values already fit their family)."""
    problems: dict[str, str] = {}
    batch_size = filled.get("batch_size")
    if isinstance(batch_size, int) and batch_size > MAX_BATCH_SIZE:
        problems["hyperparameters.batch_size"] = _over(MAX_BATCH_SIZE, batch_size, "samples a step")
    channels = filled.get("channels")
    if isinstance(channels, int) and channels > MAX_CHANNELS:
        problems["hyperparameters.channels"] = _over(MAX_CHANNELS, channels, "filters")
    hidden = filled.get("hidden_layers")
    if isinstance(hidden, list):
        problem = _hidden_layers_problem(hidden)
        if problem is not None:
            problems["hyperparameters.hidden_layers"] = problem
    return problems


def _hidden_layers_problem(hidden: list[int]) -> str | None:
    if len(hidden) > MAX_HIDDEN_LAYERS:
        return _over(MAX_HIDDEN_LAYERS, len(hidden), "layers")
    widest = max(hidden, default=0)
    if widest > MAX_HIDDEN_UNITS:
        return _over(MAX_HIDDEN_UNITS, widest, "units in a layer")
    return None


def _over(cap: int, got: int, unit: str) -> str:
    return f"at most {cap} {unit} (this platform's cap, so a run fits a worker's memory); got {got}"
