"""What a trainer's heartbeat may claim (issue 11, item 6): bounded slots, GPUs and dispatches.

A heartbeat sizes the dispatcher's plan (free slots) and becomes TrainerRegistered when the trainer is
new or changed, so absurd values are refused with INVALID_ARGUMENT before they reach either: a worker
claiming a million slots would draw the whole queue onto one process.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard_events.schemas.bounds import NAME_MAX_CHARS, identifier_problems
from modelyard_events.schemas.jobs import MAX_GPUS

MAX_TRAINER_SLOTS = 64  # runs one worker process holds at once; a GPU node runs several workers


def heartbeat_problems(
    trainer_id: str, slots_total: int, gpus: Sequence[str], dispatch_ids: Sequence[str]
) -> dict[str, str]:
    """Field → what is wrong with a heartbeat; empty when it can be recorded (and registered)."""
    problems = identifier_problems(trainer_id=trainer_id)
    if not 1 <= slots_total <= MAX_TRAINER_SLOTS:
        problems["slots_total"] = f"a trainer has 1 to {MAX_TRAINER_SLOTS} slots; got {slots_total}"
    if len(gpus) > MAX_GPUS:
        problems["gpus"] = f"at most {MAX_GPUS} GPUs; got {len(gpus)}"
    elif any(len(name) > NAME_MAX_CHARS for name in gpus):
        problems["gpus"] = f"a GPU name has at most {NAME_MAX_CHARS} characters"
    if len(dispatch_ids) > max(slots_total, 1):
        problems["running_dispatch_ids"] = (
            f"a trainer with {slots_total} slot(s) runs at most that many dispatches; got {len(dispatch_ids)}"
        )
    return problems
