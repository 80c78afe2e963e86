"""Per-sample inference latency: single-sample passes timed one by one, summarized as p50 and p95.

Trainers time bare forward passes (`measure_latency`); edges time whole predictions on probe
inputs (modelyard_inference.serving); both summarize with `summarize_latency`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

WARMUP_PASSES = 10  # first passes pay for lazy initialization (kernels, allocator, thread pools)


@dataclass(frozen=True)
class Latency:
    """Median and 95th percentile of the timed passes, in milliseconds."""

    p50_ms: float
    p95_ms: float


def measure_latency(model: nn.Module, inputs: torch.Tensor, device: torch.device, passes: int) -> Latency:
    """Time `passes` forward passes of one sample each (cycling through `inputs`), after a warm-up.

    Each input is put on `device` before its clock starts, so a pass is the forward pass alone;
    on CUDA the clock stops after a device sync, so it includes the kernels, not only their launch.
    """
    if passes < 1:
        raise ValueError(f"latency_samples must be ≥ 1, not {passes}")
    samples = inputs[: min(passes, len(inputs))].to(device)
    timings = np.empty(passes, dtype=np.float64)
    with torch.inference_mode():
        for index in range(WARMUP_PASSES):
            _forward(model, samples[index % len(samples)].unsqueeze(0), device)
        for index in range(passes):
            sample = samples[index % len(samples)].unsqueeze(0)
            started = time.perf_counter_ns()
            _forward(model, sample, device)
            timings[index] = (time.perf_counter_ns() - started) / 1e6
    return summarize_latency(timings)


def summarize_latency(timings_ms: npt.ArrayLike) -> Latency:
    """The median and 95th percentile (linear interpolation) of one or more timings in milliseconds."""
    timings = np.asarray(timings_ms, dtype=np.float64)
    if timings.size == 0:
        raise ValueError("no timings to summarize")
    p50, p95 = np.percentile(timings, [50, 95])
    return Latency(float(p50), float(p95))


def _forward(model: nn.Module, sample: torch.Tensor, device: torch.device) -> None:
    model(sample)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
