"""EstimateJob's use case: validate a job request as CreateJob would, find the dataset's size, and
estimate from the organization's past runs (nothing is created or changed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.domain_errors import PermissionDenied
from modelyard_job.app.commands import NewJob
from modelyard_job.app.dataset_gate import VersionLookup, parse_version_uri
from modelyard_job.domain.estimates import DeviceEstimate, estimate_job
from modelyard_job.domain.job_spec import validated_job_spec
from modelyard_job.projections.queries import JobViewReader


@dataclass(frozen=True)
class JobEstimate:
    """The estimate per kind of device, and what it went by."""

    epochs: int
    train_samples: int | None
    devices: list[DeviceEstimate]
    explanation: str


async def estimate(
    request: NewJob,
    engine: AsyncEngine,
    reader: JobViewReader,
    versions: VersionLookup | None,
    prices: Mapping[str, float],
) -> JobEstimate:
    """The estimate, or InvalidJobSpec for a request CreateJob would refuse, PermissionDenied for a
    dataset version of another organization, NotFound for one that does not exist."""
    filled = validated_job_spec(
        name=request.name or "estimate",  # a name is for people; an estimate needs none
        ai_module=request.ai_module,
        family=request.family,
        hyperparameters=request.hyperparameters,
        dataset_uri=request.dataset_uri,
        priority=request.priority,
        description=request.description,
    )
    epochs = int(filled["epochs"])
    train_samples = await _train_samples(request, versions)
    async with engine.connect() as conn:
        runs = await reader.past_runs(conn, request.org_id, request.ai_module, request.family)
    devices = estimate_job(runs, epochs, train_samples, prices)
    return JobEstimate(
        epochs, train_samples, devices, _explanation(request, len(runs), train_samples, devices)
    )


async def _train_samples(request: NewJob, versions: VersionLookup | None) -> int | None:
    parsed = parse_version_uri(request.dataset_uri, allow_file_datasets=True)  # a file's size is unknown
    if parsed is None or versions is None:
        return None
    facts = await versions.version(*parsed)
    if facts.org_id != request.org_id:
        # Another organization's dataset: its size is not yours to learn.
        raise PermissionDenied(f"{request.dataset_uri} is not in your organization ({request.org_id})")
    return facts.train_samples


def _explanation(request: NewJob, runs: int, train_samples: int | None, devices: list[DeviceEstimate]) -> str:
    subject = f"{request.ai_module} ({request.family}) in {request.org_id}"
    if not devices:
        return f"no completed training run of {subject} to go by yet; the first run will give one"
    size = (
        f"scaled to this dataset's {train_samples:,} training samples"
        if train_samples
        else "the dataset's size is unknown (a file), so past epochs are taken as they were"
    )
    return f"from the last {runs} completed run(s) of {subject}, {size}"
