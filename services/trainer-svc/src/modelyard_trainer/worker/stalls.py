"""A training thread gone silent: how a worker notices, and why it exits then.

A Python thread cannot be stopped from outside. A hung one (a read from a network file system that
never returns, a deadlocked data loader, a CUDA call that never comes back) keeps its slot, its
memory and its GPU while the worker's loop goes on heartbeating, so job-svc would wait on the job
for ever and the liveness probe (liveness.py) sees nothing wrong. The run's observer notes when its
thread last said anything (a phase, progress, an epoch, a log line); once it has been silent for
`training_stall_timeout_s`, the worker logs why (the line lands in the run's logs, `yard jobs logs`),
stops, and exits with EXIT_STALLED, so that its supervisor (Kubernetes, systemd) starts it afresh.
Its dispatches drop out of the heartbeats, their leases lapse, and job-svc resumes each job from its
last checkpoint on a trainer that has a slot (a job whose trainers keep dying fails, naming them).
The job is not failed: a hang is as often the machine's as the job's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from modelyard_trainer.worker.report_writer import QueuedReports

log = logging.getLogger(__name__)

EXIT_STALLED = 3
"""The worker's exit status after a training thread hung (0: stopped cleanly, 2: bad settings)."""
_MOST_BETWEEN_CHECKS_S = 30.0


class TrainingThreadStalled(RuntimeError):
    """A run's training thread said nothing for too long: the worker must exit (EXIT_STALLED)."""


async def hung(thread: asyncio.Future[None], observer: QueuedReports, timeout_s: float) -> bool:
    """Await a run's training `thread` (raising what it raised); False once it has ended, True once
    it has said nothing through `observer` for `timeout_s` (0: no watch). Then the run's reports
    end with the line saying why (logged in the run's context, its last `TrainingLogged`), and
    whatever the thread says afterwards is dropped: a pause or cancel it would report must not end
    the job, which resumes elsewhere."""
    if not timeout_s:
        await thread
        return False
    silent_s = await watch(thread, lambda: observer.heard_at, timeout_s)
    if silent_s is None:
        return False
    log.error("run stalled: dispatch %s: %s", observer.run.dispatch_id, stalled_message(silent_s, timeout_s))
    observer.close()
    return True


async def watch(
    thread: asyncio.Future[None], heard_at: Callable[[], float], timeout_s: float
) -> float | None:
    """Await `thread`: None once it has ended (raising what it raised), or how long it had been
    silent (by `heard_at`, a `time.monotonic()` reading) once that exceeds `timeout_s`."""
    every = min(timeout_s / 4, _MOST_BETWEEN_CHECKS_S)
    while True:
        done, _ = await asyncio.wait([thread], timeout=every)
        if done:
            thread.result()
            return None
        silent = time.monotonic() - heard_at()
        if silent > timeout_s:
            return silent


def stalled_message(silent_s: float, timeout_s: float) -> str:
    """What the run's logs and the worker's say about a silent thread, and what comes next."""
    return (
        f"the training thread has said nothing for {silent_s:.0f} s (over "
        f"MODELYARD_TRAINING_STALL_TIMEOUT_S={timeout_s:g}): it looks hung, and a thread cannot be "
        f"stopped, so this worker exits (status {EXIT_STALLED}) to be started afresh; the job resumes "
        "from its last checkpoint once the dispatch's lease lapses"
    )
