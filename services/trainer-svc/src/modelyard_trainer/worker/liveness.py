"""The worker's liveness file, and the check a Kubernetes exec probe runs against it.

A worker serves nothing to probe, so its event loop touches a file every `BEAT_EVERY_S`; the probe
(`python -m modelyard_trainer.worker.liveness <file>`) fails once the file is older than
`--max-age-s`. A worker whose loop has stalled (a deadlock, a native call holding the GIL) already
stops heartbeating, and job-svc re-queues its jobs when their leases lapse; the probe makes the
kubelet restart it too, so it does not sit on its GPU. A training thread that hangs while the loop
goes on is not caught here: the worker finds it itself and exits (stalls.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path

BEAT_EVERY_S = 5.0
DEFAULT_MAX_AGE_S = 60.0


async def beat(path: Path, stop: asyncio.Event, every_s: float = BEAT_EVERY_S) -> None:
    """Touch `path` now and every `every_s` until `stop` is set; remove it then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        while not stop.is_set():
            # On the loop on purpose: the touch is the proof that the loop turns (a local tmp file).
            path.touch()  # noqa: ASYNC240
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        path.unlink(missing_ok=True)  # noqa: ASYNC240  (a stopped worker is not alive, whatever the clock)


def problem(path: Path, max_age_s: float, now: float | None = None) -> str | None:
    """Why the worker behind `path` is not alive, or None when it touched the file recently."""
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return f"{path} does not exist: the worker has not started its loop, or has stopped"
    age = (time.time() if now is None else now) - touched
    if age > max_age_s:
        return (
            f"{path} was last touched {age:.0f} s ago (over {max_age_s:.0f} s): the worker's loop has stalled"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 when the trainer worker's liveness file is fresh.")
    parser.add_argument("file", type=Path, help="the worker's MODELYARD_TRAINER_LIVENESS_FILE")
    parser.add_argument("--max-age-s", type=float, default=DEFAULT_MAX_AGE_S)
    args = parser.parse_args(argv)
    found = problem(args.file, args.max_age_s)
    if found is not None:
        print(found, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
