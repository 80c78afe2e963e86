"""When a failed deployment is tried again: exponential backoff with a jitter fixed per deployment.

The jitter comes from the deployment id, not a random draw, so the decision is the same every time
it is made (a replayed or retried command decides nothing new), yet a thousand servers that failed
together spread their retries over a tenth of the delay instead of coming back in lock-step.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

MAX_BACKOFF_S = 3600.0
JITTER_SHARE = 0.10


def jitter_share(deployment_id: str) -> float:
    """A fraction in [0, JITTER_SHARE) derived from the deployment id (stable across processes)."""
    digest = hashlib.sha256(deployment_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 * JITTER_SHARE


def backoff_s(deployment_id: str, backoff_base_s: float, retry_count: int) -> float:
    """base * 2**retry_count, capped at an hour, plus the deployment's jitter."""
    exponent = min(retry_count, 32)  # 2**32 * any positive base is far past the cap already
    delay = min(backoff_base_s * 2.0**exponent, MAX_BACKOFF_S)
    return delay * (1 + jitter_share(deployment_id))


def retry_time(
    deployment_id: str,
    backoff_base_s: float,
    retry_count: int,
    max_retries: int,
    deadline_at: datetime,
    now: datetime,
) -> datetime | None:
    """When the failure is retried automatically, or None when it is final (no retries left, or the
    retry would come after the deadline)."""
    if retry_count >= max_retries:
        return None
    at = now + timedelta(seconds=backoff_s(deployment_id, backoff_base_s, retry_count))
    return at if at < deadline_at else None
