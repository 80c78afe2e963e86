"""CreateJob's dataset check: file:// passes, dataset:// must be a ready version of the same org and task."""

from __future__ import annotations

import pytest

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_job.app.dataset_gate import VersionFacts, check_trainable, parse_version_uri


class Versions:
    def __init__(self, facts: VersionFacts) -> None:
        self.facts, self.asked = facts, list[tuple[str, int]]()

    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        self.asked.append((dataset_id, version))
        return self.facts


def facts(**overrides: object) -> VersionFacts:
    values: dict[str, object] = {
        "dataset_id": "ds-1",
        "version": 2,
        "org_id": "acme",
        "task": "classification",
        "ready": True,
        "failed_checks": [],
    }
    values.update(overrides)
    return VersionFacts(**values)  # type: ignore[arg-type]


async def test_a_ready_version_of_the_jobs_organization_passes_and_is_asked_for_by_number() -> None:
    versions = Versions(facts())
    await check_trainable(versions, "acme", "dataset://ds-1/2", "image_classifier")
    assert versions.asked == [("ds-1", 2)]


async def test_a_local_file_where_files_are_allowed_is_not_a_version_and_is_not_checked() -> None:
    await check_trainable(
        None, "acme", "file:///data/digits.npz", "image_classifier", allow_file_datasets=True
    )


@pytest.mark.parametrize("uri", ["dataset://ds-1", "dataset://ds-1/0", "dataset://ds-1/latest", "s3://b/k"])
def test_a_uri_that_names_no_version_number_is_invalid(uri: str) -> None:
    with pytest.raises(InvalidArgument, match="dataset://<dataset_id>/<version number>"):
        parse_version_uri(uri)


@pytest.mark.parametrize(
    ("changed", "words"),
    [
        ({"ready": False, "failed_checks": ["samples_per_class: class '3' has 4"]}, "not ready.*class '3'"),
        (
            {"org_id": "globex"},
            r"^dataset://ds-1/2 is not in your organization \(acme\); train on your own data$",
        ),
        ({"task": "none"}, "image_classifier trains on datasets whose label task is 'classification'"),
    ],
)
async def test_a_version_that_cannot_train_the_job_is_refused_saying_why(
    changed: dict[str, object], words: str
) -> None:
    with pytest.raises(IllegalTransition, match=words):
        await check_trainable(Versions(facts(**changed)), "acme", "dataset://ds-1/2", "image_classifier")
