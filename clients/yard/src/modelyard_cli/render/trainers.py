"""The trainer fleet as a rich table."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import cells, format_time, present


def trainers_table(trainers: Iterable[jobs_pb2.Trainer]) -> Table:
    """One row per trainer: id, alive, free/total slots, GPUs (or cpu), its jobs, last heartbeat."""
    table = Table("id", "alive", "slots free/total", "gpus", "jobs", "last heartbeat", title="trainers")
    for trainer in trainers:
        table.add_row(
            *cells(
                trainer.trainer_id,
                "yes" if trainer.alive else "no",
                f"{trainer.slots_free}/{trainer.slots_total}",
                ", ".join(trainer.gpus) or "cpu",
                ", ".join(trainer.job_ids),
                format_time(present(trainer, "last_heartbeat_at")),
            )
        )
    return table
