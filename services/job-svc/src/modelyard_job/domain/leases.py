"""Trainer leases: which dispatches have expired and which trainers are lost, from heartbeat times.

A dispatch is a lease held by its trainer. The lease lives while the trainer heartbeats and names the
dispatch among those it is running (a trainer restarted under the same id renews nothing it forgot;
another trainer naming the dispatch renews nothing either, issue 11 item 6):
its deadline is the later of `lease_expires_at` (written in JobDispatched, so a lease never ends before
what the log promised) and the last heartbeat that renewed it + TTL. At the deadline itself the lease
has expired. A trainer is lost once its last heartbeat is TTL old; a trainer never heard from has no
heartbeat time and is not reported lost (it never registered a liveness to lose), but its leases still
expire at `lease_expires_at`. The sweeper then calls `TrainingJob.expire_lease(dispatch_id)` for each
expired one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ActiveLease:
    """A running job's current dispatch, as the lease read model holds it."""

    job_id: str
    dispatch_id: str
    trainer_id: str
    lease_expires_at: datetime


Renewals = Mapping[tuple[str, str], datetime]
"""(dispatch id, trainer id) → the last heartbeat of that trainer that named that dispatch."""


def lease_deadline(lease: ActiveLease, renewed_at: datetime | None, ttl: timedelta) -> datetime:
    """When `lease` expires unless a heartbeat renews it again (`renewed_at`: the last one that did)."""
    if renewed_at is None:
        return lease.lease_expires_at
    return max(lease.lease_expires_at, renewed_at + ttl)


def expired_leases(
    leases: Iterable[ActiveLease],
    renewals: Renewals,
    ttl: timedelta,
    now: datetime,
) -> list[ActiveLease]:
    """The leases whose deadline is at or before `now`, oldest deadline first (then by dispatch id).

    Only a heartbeat of the lease's own trainer renews it: `renewals` is keyed by (dispatch id,
    trainer id), and a renewal of the dispatch by any other trainer is not looked at.
    """
    _check_ttl(ttl)
    deadlines = [
        (lease_deadline(lease, renewals.get((lease.dispatch_id, lease.trainer_id)), ttl), lease)
        for lease in leases
    ]
    expired = [(deadline, lease) for deadline, lease in deadlines if deadline <= now]
    expired.sort(key=lambda item: (item[0], item[1].dispatch_id))
    return [lease for _, lease in expired]


def lost_trainers(
    last_heartbeats: Mapping[str, datetime],
    ttl: timedelta,
    now: datetime,
    already_lost: Collection[str] = (),
) -> list[str]:
    """Trainers whose last heartbeat is at least `ttl` old, sorted, leaving out those `already_lost`.

    `already_lost` lets the caller record one TrainerLost per silence, not one per sweep.
    """
    _check_ttl(ttl)
    return sorted(
        trainer_id
        for trainer_id, heartbeat_at in last_heartbeats.items()
        if heartbeat_at + ttl <= now and trainer_id not in already_lost
    )


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"the lease TTL must be positive; got {ttl}")
