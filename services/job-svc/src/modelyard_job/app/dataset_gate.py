"""The check CreateJob makes before accepting a dataset: a published version, ready to train on.

The port is here; the gRPC adapter (dataset_client.py) asks dataset-svc, which owns versions. A job on
`file://` data (local development, benchmarks) is not a dataset version and is not checked; it is
accepted only where MODELYARD_ALLOW_FILE_DATASETS=true (off by default, so a deployment refuses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.schemas.datasets import FAMILY_LABEL_TASKS
from modelyard_events.schemas.manifest import VersionUri


@dataclass(frozen=True)
class VersionFacts:
    """What job-svc needs to know about a dataset version."""

    dataset_id: str
    version: int
    org_id: str
    task: str
    ready: bool
    failed_checks: list[str]
    train_samples: int | None = None  # the training split's size (estimates scale by it)


class VersionLookup(Protocol):
    """Reads a published version (NotFound / IllegalTransition when there is none)."""

    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        """The facts of a published version."""
        ...


def parse_version_uri(uri: str, allow_file_datasets: bool = False) -> tuple[str, int] | None:
    """(dataset id, version) of a dataset:// URI, None for file:// URIs when they are allowed;
    InvalidArgument otherwise."""
    if uri.startswith("file://"):
        if not allow_file_datasets:
            raise InvalidArgument(
                "dataset_uri",
                f"this deployment trains only on published dataset versions, not local files ({uri}); "
                "publish a dataset version and use dataset://<dataset_id>/<version number>",
            )
        return None
    try:
        version = VersionUri.parse(uri)
    except ValueError:
        raise InvalidArgument(
            "dataset_uri",
            f"must name a published version as dataset://<dataset_id>/<version number>; got {uri!r}",
        ) from None
    return version.dataset_id, version.version


async def check_trainable(
    lookup: VersionLookup | None, org_id: str, uri: str, family: str, allow_file_datasets: bool = False
) -> None:
    """Return when the job may train on `uri`; else IllegalTransition saying what is missing
    (InvalidArgument for a URI that names no version, or a file:// URI where files are not allowed)."""
    parsed = parse_version_uri(uri, allow_file_datasets)
    if parsed is None:
        return
    if lookup is None:
        raise IllegalTransition(
            "this job-svc is not connected to dataset-svc, so dataset:// URIs cannot be checked"
        )
    facts = await lookup.version(*parsed)
    if facts.org_id != org_id:
        raise IllegalTransition(f"{uri} is not in your organization ({org_id}); train on your own data")
    wanted = FAMILY_LABEL_TASKS.get(family)
    if wanted is not None and facts.task != wanted:
        raise IllegalTransition(
            f"{family} trains on datasets whose label task is {wanted!r}, "
            f"but {uri} is labeled for {facts.task!r}"
        )
    if not facts.ready:
        missing = "; ".join(facts.failed_checks) or "see `yard datasets readiness`"
        raise IllegalTransition(f"{uri} is not ready for training: {missing}")
