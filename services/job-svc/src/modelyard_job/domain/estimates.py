"""An estimate of a job's duration and cost before it is submitted, from the module's past runs (pure).

Each past run of the same organization, module and family gives, on the device it ran on: its
throughput (samples per second), its time per epoch, how many samples it trained on, and the time it
spent outside its epochs (fetching and loading data, building the model, saving the artifact). Per
kind of device (cpu, cuda), the estimate scales the median run's epoch time by the new dataset's
size when it is known, adds the median time outside epochs, and prices the device-hours when a price
per device-hour is configured for that kind. What it went by is part of the answer.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PastRun:
    """One completed training run, as the views measured it."""

    device: str  # as the trainer reported it: cpu, cuda, cuda:1 …
    train_samples: int
    epoch_s: float  # the median of its epochs' durations
    samples_per_s: float  # the median of its epochs' throughputs
    outside_epochs_s: float  # its run time minus its epochs' time


@dataclass(frozen=True)
class DeviceEstimate:
    """How long the job would take on one kind of device, and what it would cost there."""

    device: str
    runs: int
    samples_per_s: float
    epoch_s: float
    duration_s: float
    cost: float | None  # None: no price per device-hour configured for this kind of device
    price_per_device_hour: float | None
    scaled_to_dataset: bool  # False: the new dataset's size is unknown, past epochs taken as they were


def device_kind(device: str) -> str:
    """ "cuda:1" → "cuda"; the price table is per kind of device."""
    return device.split(":", 1)[0]


def estimate_job(
    runs: Sequence[PastRun], epochs: int, train_samples: int | None, prices: Mapping[str, float]
) -> list[DeviceEstimate]:
    """One estimate per kind of device the past runs used, fastest first; [] without past runs."""
    by_kind: dict[str, list[PastRun]] = defaultdict(list)
    for run in runs:
        if run.train_samples > 0 and run.epoch_s > 0:
            by_kind[device_kind(run.device)].append(run)
    scale_to = train_samples if train_samples else None  # an unknown or empty split scales nothing
    estimates = []
    for kind, kind_runs in by_kind.items():
        epoch_s = statistics.median(
            r.epoch_s * scale_to / r.train_samples if scale_to else r.epoch_s for r in kind_runs
        )
        duration = statistics.median(r.outside_epochs_s for r in kind_runs) + epochs * epoch_s
        price = prices.get(kind)
        estimates.append(
            DeviceEstimate(
                device=kind,
                runs=len(kind_runs),
                samples_per_s=statistics.median(r.samples_per_s for r in kind_runs),
                epoch_s=epoch_s,
                duration_s=duration,
                cost=None if price is None else duration / 3600 * price,
                price_per_device_hour=price,
                scaled_to_dataset=scale_to is not None,
            )
        )
    return sorted(estimates, key=lambda e: e.duration_s)
