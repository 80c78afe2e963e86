"""The metric points both sides of metrics_ingest_bench.py ingest: same jobs, epochs, keys and values.

One epoch of one job carries POINTS_PER_EPOCH points: the five fields every `EpochCompleted` has
(train_loss, val_loss, val_accuracy, samples_per_s, duration_s) and five task metrics in its
`metrics`. The GPU fields stay null, as on a CPU trainer, and are not counted. MLflow logs the
same ten keys of the same values with step = epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH_FIELDS = ("train_loss", "val_loss", "val_accuracy", "samples_per_s", "duration_s")
TASK_METRICS = ("top5_accuracy", "precision", "recall", "f1", "learning_rate")
POINTS_PER_EPOCH = len(EPOCH_FIELDS) + len(TASK_METRICS)
TIMESTAMP_MS = 1_700_000_000_000  # MLflow's points get fixed timestamps, one second per epoch


@dataclass(frozen=True)
class Workload:
    """`jobs` running jobs, each reporting epochs 1..`epochs`."""

    jobs: int
    epochs: int

    @property
    def events(self) -> int:
        return self.jobs * self.epochs

    @property
    def points(self) -> int:
        return self.events * POINTS_PER_EPOCH


def point_values(job: int, epoch: int) -> dict[str, float]:
    """The ten values job `job` reports for `epoch` (plausible, distinct per job and epoch)."""
    decay = 1.0 / (epoch + 0.01 * job)
    return {
        "train_loss": 2.3 * decay,
        "val_loss": 2.4 * decay,
        "val_accuracy": 1.0 - 0.9 * decay,
        "samples_per_s": 1800.0 + job + 0.5 * epoch,
        "duration_s": 12.5 + 0.01 * job,
        "top5_accuracy": 1.0 - 0.5 * decay,
        "precision": 1.0 - 0.8 * decay,
        "recall": 1.0 - 0.85 * decay,
        "f1": 1.0 - 0.82 * decay,
        "learning_rate": 1e-3 * 0.95**epoch,
    }
