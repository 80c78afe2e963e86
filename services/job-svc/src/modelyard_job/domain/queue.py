"""The order in which queued jobs get trainers, and which trainer each gets.

The rule, applied one job at a time:

1. **Priority** — a job with a higher priority (0..100) goes before every job with a lower one.
2. **Fair share** — among jobs of equal priority, the next job comes from the organization that has
   the fewest jobs running. Jobs placed earlier in the same order count as running for their
   organization, so two organizations with equal load alternate instead of one draining its backlog
   first.
3. **Age** — otherwise the job that entered the queue earlier goes first (`queued_at`: when the job
   last entered the queue, so a resumed or retried job lines up again behind those already waiting),
   and the job id breaks exact ties so the order is total and the same on every replica.

Dispatch takes the jobs in that order and gives each to the trainer with the most free slots (ties by
trainer id), which spreads load across trainers; it stops when no trainer has a free slot, and never
gives a trainer more jobs than it has free slots.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True)
class QueueEntry:
    """A queued job as the scheduler sees it."""

    job_id: str
    org_id: str
    priority: int
    queued_at: datetime


@dataclass(frozen=True)
class TrainerCapacity:
    """A live trainer and how many more jobs it can take now."""

    trainer_id: str
    free_slots: int

    def __post_init__(self) -> None:
        if self.free_slots < 0:
            raise ValueError(f"trainer {self.trainer_id}: free_slots must be >= 0; got {self.free_slots}")


class PlannedDispatch(NamedTuple):
    """One decision of a planning pass: give `job_id` to `trainer_id`."""

    job_id: str
    trainer_id: str


def order_queue(entries: Iterable[QueueEntry], running_by_org: Mapping[str, int]) -> list[QueueEntry]:
    """All `entries`, each once, in dispatch order (priority, then fair share, then age; see module doc).

    `running_by_org` counts jobs running now per organization (missing = 0); it is not modified.
    """
    running = Counter(running_by_org)
    backlog = _backlog_per_org(entries)
    # One candidate per organization: its best job. Placing a job changes only that organization's
    # running count, so only its candidate needs a new key; the heap stays exact in O(n log n).
    heads = [_head_key(org, jobs[-1], running[org]) for org, jobs in backlog.items()]
    heapq.heapify(heads)
    ordered: list[QueueEntry] = []
    while heads:
        *_, org = heapq.heappop(heads)
        jobs = backlog[org]
        ordered.append(jobs.pop())
        running[org] += 1
        if jobs:
            heapq.heappush(heads, _head_key(org, jobs[-1], running[org]))
    return ordered


def plan_dispatches(
    queue: Iterable[QueueEntry], trainers: Iterable[TrainerCapacity], running_by_org: Mapping[str, int]
) -> list[PlannedDispatch]:
    """Which queued job goes to which trainer in this pass, in dispatch order.

    Guarantees: jobs are taken in `order_queue` order (the queue need not be sorted), each job at most
    once; a trainer never gets more jobs than its `free_slots`; the number of dispatches is
    min(queued jobs, total free slots).
    """
    slots = [(-t.free_slots, t.trainer_id) for t in trainers if t.free_slots > 0]
    heapq.heapify(slots)
    plan: list[PlannedDispatch] = []
    for entry in order_queue(queue, running_by_org):
        if not slots:
            break
        negative_free, trainer_id = heapq.heappop(slots)
        plan.append(PlannedDispatch(entry.job_id, trainer_id))
        if negative_free < -1:
            heapq.heappush(slots, (negative_free + 1, trainer_id))
    return plan


def _backlog_per_org(entries: Iterable[QueueEntry]) -> dict[str, list[QueueEntry]]:
    backlog: dict[str, list[QueueEntry]] = defaultdict(list)
    for entry in entries:
        backlog[entry.org_id].append(entry)
    for jobs in backlog.values():
        jobs.sort(key=_rank, reverse=True)  # best last, so taking the next job is an O(1) pop()
    return backlog


def _rank(entry: QueueEntry) -> tuple[int, datetime, str]:
    # Within one organization the running count is shared, so priority then age decide.
    return -entry.priority, entry.queued_at, entry.job_id


def _head_key(org: str, head: QueueEntry, running: int) -> tuple[int, int, datetime, str, str]:
    return (-head.priority, running, head.queued_at, head.job_id, org)
