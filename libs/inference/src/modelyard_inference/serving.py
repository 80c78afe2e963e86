"""What an edge does with an artifact: load it (timed) and run probe inputs one by one (timed).

The numbers are the ones an edge reports for a deployment: how long loading took and the
per-sample latency a single request would see (scaling, forward pass and output decoding).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from torch import nn

from modelyard_inference.artifact import ArtifactConfig, Predictions, load_artifact, predict
from modelyard_inference.labels import ClassLabel
from modelyard_inference.latency import WARMUP_PASSES, summarize_latency


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode on `device`, with the config to prepare its inputs."""

    model: nn.Module
    config: ArtifactConfig
    device: str
    load_time_ms: float  # reading the file, rebuilding the network, moving it to the device

    @property
    def class_labels(self) -> list[ClassLabel] | None:
        """The labels a classifier outputs, in probability order; None for a regressor."""
        return self.config.class_labels

    @property
    def is_classifier(self) -> bool:
        """Whether outputs are class labels (else values in target units)."""
        return self.config.class_labels is not None

    def predict(self, inputs: Any) -> Predictions:
        """One output per input; inputs in any form `modelyard_inference.predict` accepts."""
        return predict(self.model, self.config, inputs)


@dataclass(frozen=True)
class ProbeRun:
    """The outputs of single-sample passes over the probes, and their latency."""

    labels: list[ClassLabel | float]  # one per probe: class label, or value for a regressor
    latency_p50_ms: float
    latency_p95_ms: float

    @property
    def samples(self) -> int:
        """How many probes were run (and timed)."""
        return len(self.labels)


def load_model(path: Path, device: str = "cpu") -> LoadedModel:
    """Load the artifact at `path` onto `device` and time it; ArtifactError if it is not one of ours."""
    started = time.perf_counter_ns()
    model, config = load_artifact(path, device)
    elapsed_ms = (time.perf_counter_ns() - started) / 1e6
    return LoadedModel(model, config, device, elapsed_ms)


def measure_on_probes(loaded: LoadedModel, probes: npt.NDArray[Any]) -> ProbeRun:
    """Run each probe (a batch `N × input_shape`, unscaled) as its own request and time it.

    A few untimed passes first pay for lazy initialization (kernels, allocator, thread pools), so
    the percentiles describe steady serving. `predict` copies outputs to the CPU, which waits for
    CUDA kernels: each timing covers the whole request.
    """
    if len(probes) == 0:
        raise ValueError("no probe inputs to run")
    for index in range(WARMUP_PASSES):
        loaded.predict(probes[index % len(probes)][np.newaxis])
    labels: list[ClassLabel | float] = []
    timings = np.empty(len(probes), dtype=np.float64)
    for index in range(len(probes)):
        sample = probes[index][np.newaxis]
        started = time.perf_counter_ns()
        (output,) = loaded.predict(sample).outputs
        timings[index] = (time.perf_counter_ns() - started) / 1e6
        labels.append(output)
    latency = summarize_latency(timings)
    return ProbeRun(labels, latency.p50_ms, latency.p95_ms)
