"""Which published versions a job or a model used, learned from job-svc's and the registry's events.

A version used by a job (training or evaluation) or registered into a model version is part of a
lineage: deleting one of its samples would leave that job or model unexplainable, so the Dataset
aggregate refuses it (domain/dataset.py). These functions are pure: the consumer
(consumers.py) feeds them verified events and stores what they return in `dataset_version_uses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import JobCreated
from modelyard_events.schemas.manifest import VersionUri
from modelyard_events.schemas.registry import ModelEvaluationRequested, ModelVersionRegistered

UserKind = Literal["job", "model"]
_NAMED = 3  # users named in a refusal; the rest are counted


@dataclass(frozen=True, order=True)
class VersionUser:
    """A job or a model version that used a dataset version."""

    kind: UserKind
    user_id: str

    def __str__(self) -> str:
        return f"job {self.user_id}" if self.kind == "job" else f"model version {self.user_id}"


@dataclass(frozen=True)
class VersionUse:
    """One use of one published version of one dataset, by one job or model, in one organization."""

    dataset_id: str
    version: int
    user: VersionUser
    org_id: str


@dataclass(frozen=True)
class UsedVersion:
    """A published version that was used, by whom, and which samples it holds (from its manifest)."""

    version: int
    users: tuple[VersionUser, ...]
    sample_ids: frozenset[str]

    def describe(self) -> str:
        """`version 2, used by job j-1 and model version mv-3 (and 2 more)`."""
        named = sorted(self.users)
        text = " and ".join(str(user) for user in named[:_NAMED])
        more = f" (and {len(named) - _NAMED} more)" if len(named) > _NAMED else ""
        return f"version {self.version}, used by {text}{more}"


def uses_in(event: DomainEvent) -> list[VersionUse]:
    """The dataset version an event says a job or model used; none for other events.

    A dataset named by a file URI (development) or anything that is not a `dataset://` version is no
    use of a published version, so it is ignored.
    """
    if isinstance(event, JobCreated):
        found = [(event.dataset_uri, VersionUser("job", event.job_id), event.org_id)]
    elif isinstance(event, ModelVersionRegistered):
        found = [(event.dataset_uri, VersionUser("model", event.version_id), event.org_id)]
    elif isinstance(event, ModelEvaluationRequested):
        found = [(event.dataset_uri, VersionUser("job", event.job_id), event.org_id)]
    else:
        return []
    uses = []
    for uri, user, org_id in found:
        try:
            named = VersionUri.parse(uri)
        except ValueError:
            continue
        uses.append(VersionUse(named.dataset_id, named.version, user, org_id))
    return uses


def used_holding(sample_id: str, used: Sequence[UsedVersion]) -> list[UsedVersion]:
    """The versions a job or model used that hold the sample, oldest first."""
    return sorted((u for u in used if u.users and sample_id in u.sample_ids), key=lambda u: u.version)
