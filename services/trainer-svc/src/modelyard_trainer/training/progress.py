"""Throttled progress reports with measured throughput and an ETA derived from it."""

from __future__ import annotations

import time
from collections.abc import Callable

from modelyard_trainer.training.contracts import Progress


class ProgressMeter:
    """Decides when a report is due (at most one per `interval_s`) and measures what happened since the last.

    The window restarts at each epoch start, so validation and checkpoint time
    never count against training throughput.
    """

    def __init__(
        self,
        interval_s: float,
        epochs_total: int,
        train_samples: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval_s = interval_s
        self._epochs_total = epochs_total
        self._train_samples = train_samples
        self._clock = clock
        self._since = clock()
        self._samples_at = 0
        self._loss_sum_at = 0.0

    def start_epoch(self, samples_done: int, loss_sum: float) -> None:
        """Begin a window at this epoch's first step to run (`samples_done` rows already behind it)."""
        self._since = self._clock()
        self._samples_at = samples_done
        self._loss_sum_at = loss_sum

    def due(self) -> bool:
        """True when `interval_s` has passed since the last report (or the epoch start)."""
        return self._clock() - self._since >= self._interval_s

    def report(self, epoch: int, step: int, steps_total: int, samples_done: int, loss_sum: float) -> Progress:
        """The report for this point of epoch `epoch` (1-based); starts the next window.

        `samples_done` and `loss_sum` are this epoch's rows and sum of loss × rows so far.
        """
        now = self._clock()
        samples = samples_done - self._samples_at
        elapsed = now - self._since
        rate = samples / elapsed if elapsed > 0 else 0.0
        loss = (loss_sum - self._loss_sum_at) / samples if samples else float("nan")
        remaining = (self._train_samples - samples_done) + (self._epochs_total - epoch) * self._train_samples
        eta = remaining / rate if rate > 0 else None
        self._since, self._samples_at, self._loss_sum_at = now, samples_done, loss_sum
        return Progress(epoch, step, steps_total, loss, rate, eta)
