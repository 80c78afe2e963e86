"""Dispatches lost to dead workers: a job whose trainers keep dying without a word stops being re-queued.

A worker killed by the kernel (out of memory) writes no report; job-svc only sees its lease lapse. Each
lapse of the current attempt is remembered, and the lapse that reaches the cap fails the job instead of
queueing it again (issue 11, item 3), with a reason that names the trainers and how far they got.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_MAX_LOST_DISPATCHES = 3
_TRAINERS_NAMED = 5  # the reason stays short however high the cap is set
_TRAINER_ID_CHARS = 64


@dataclass(frozen=True)
class LostDispatch:
    """A dispatch of the current attempt whose lease lapsed: its trainer, whether that trainer had
    reported the run started, and the epochs done (last recorded checkpoint) when it was lost."""

    trainer_id: str
    started: bool
    epochs_done: int


def is_poison(lost_before: int, max_lost_dispatches: int) -> bool:
    """Whether one more lost dispatch, after `lost_before` of this attempt, reaches the cap."""
    if max_lost_dispatches < 1:
        raise ValueError(f"max_lost_dispatches must be at least 1; got {max_lost_dispatches}")
    return lost_before + 1 >= max_lost_dispatches


def poison_reason(lost: Sequence[LostDispatch]) -> str:
    """`lost 3 dispatches to trainers that died without a report (t-1 in epoch 3, …); …what to do`."""
    named = ", ".join(_where(one) for one in lost[-_TRAINERS_NAMED:])
    more = f" and {len(lost) - _TRAINERS_NAMED} earlier" if len(lost) > _TRAINERS_NAMED else ""
    return (
        f"lost {len(lost)} dispatches to trainers that stopped heartbeating without a report "
        f"({named}{more}); a worker killed by the kernel (out of memory) writes nothing, so lower "
        "batch_size or the model's size, or give the trainers more memory, then retry the job"
    )


def _where(one: LostDispatch) -> str:
    trainer = one.trainer_id[:_TRAINER_ID_CHARS] + ("…" if len(one.trainer_id) > _TRAINER_ID_CHARS else "")
    return f"{trainer} in epoch {one.epochs_done + 1}" if one.started else f"{trainer} before starting"
