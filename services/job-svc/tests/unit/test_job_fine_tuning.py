"""CreateJob with a base model version over an in-memory store and a fake registry: which bases are
accepted, and what each refusal says."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelyard_events.caller import Caller
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.envelope import Actor
from modelyard_events.schemas.jobs import ModelInput
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import DependencyUnavailable
from modelyard_job.app import JobCommands, NewJob
from modelyard_job.app.base_version_gate import ModelVersionFacts
from modelyard_job.domain import plan_named

ALICE = Caller(Actor(subject="alice", roles=("super_admin",)))
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BASE = ModelVersionFacts(
    version_id="mv-7",
    org_id="acme",
    ai_module="digit-reader",
    family="image_classifier",
    status="approved",
    semantic_version="1.2.0",
    artifact_sha256="12" * 32,
    artifact_size_bytes=4096,
)


class FakeRegistry:
    """Answers the versions it holds; None for any other id; or raises `failure`."""

    def __init__(self, *versions: ModelVersionFacts) -> None:
        self.versions = {v.version_id: v for v in versions}
        self.failure: Exception | None = None
        self.asked: list[str] = []

    async def model_version(self, version_id: str) -> ModelVersionFacts | None:
        self.asked.append(version_id)
        if self.failure is not None:
            raise self.failure
        return self.versions.get(version_id)


def fine_tune(base_version_id: str = "mv-7", **overrides: object) -> NewJob:
    fields: dict[str, object] = {
        "org_id": "acme",
        "name": "digits, more data",
        "ai_module": "digit-reader",
        "family": "image_classifier",
        "dataset_uri": "file:///data/digits.npz",
        "hyperparameters": {"epochs": 2},
        "priority": 50,
        "base_version_id": base_version_id,
        "description": "the 1.2.0 model on this month's scans",
    }
    return NewJob(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


def commands_with(store: InMemoryEventStore, registry: FakeRegistry | None) -> JobCommands:
    return JobCommands(
        store, lambda org: plan_named("enterprise"), lambda: NOW, allow_file_datasets=True, models=registry
    )


class TestAcceptedBases:
    @pytest.mark.parametrize("status", ["approved", "released"])
    async def test_an_approved_or_released_base_becomes_the_jobs_model_input(
        self, store: InMemoryEventStore, status: str
    ) -> None:
        registry = FakeRegistry(replace(BASE, status=status))

        job = await commands_with(store, registry).create(fine_tune(), ALICE)

        created = (await store.read_stream(job.job_id))[0]
        assert (created.type, created.data["kind"]) == ("JobCreated", "training")
        assert ModelInput(**created.data["model_input"]) == ModelInput(
            version_id="mv-7",
            ai_module="digit-reader",
            semantic_version="1.2.0",
            artifact_sha256="12" * 32,
            artifact_size_bytes=4096,
        )
        assert created.data["description"] == "the 1.2.0 model on this month's scans"
        assert registry.asked == ["mv-7"]

    async def test_a_job_without_a_base_does_not_ask_the_registry(self, store: InMemoryEventStore) -> None:
        registry = FakeRegistry()

        job = await commands_with(store, registry).create(fine_tune(base_version_id=""), ALICE)

        assert job.model_input is None
        assert registry.asked == []


class TestRefusedBases:
    async def test_an_unknown_base_is_an_invalid_argument_naming_it(self, store: InMemoryEventStore) -> None:
        with pytest.raises(InvalidArgument, match="no model version 'mv-9' is registered") as refused:
            await commands_with(store, FakeRegistry(BASE)).create(fine_tune("mv-9"), ALICE)

        assert refused.value.field == "base_version_id"
        assert await store.read_all() == []  # nothing counted, nothing created

    @pytest.mark.parametrize("status", ["draft", "testing", "deprecated"])
    async def test_a_base_not_approved_or_released_is_a_failed_precondition_naming_its_status(
        self, store: InMemoryEventStore, status: str
    ) -> None:
        registry = FakeRegistry(replace(BASE, status=status))

        with pytest.raises(IllegalTransition) as refused:
            await commands_with(store, registry).create(fine_tune(), ALICE)

        assert refused.value.message == (
            f"model version mv-7 (digit-reader 1.2.0) is {status}; "
            "only approved or released versions can be fine-tuned"
        )

    @pytest.mark.parametrize(
        ("base", "says"),
        [
            (
                replace(BASE, ai_module="face-finder"),
                "is a model of ai_module 'face-finder', not 'digit-reader'",
            ),
            (replace(BASE, family="tabular_classifier"), "is a tabular_classifier, not a image_classifier"),
            (replace(BASE, org_id="globex"), "belongs to organization globex, not acme"),
        ],
        ids=["module", "family", "organization"],
    )
    async def test_a_base_of_another_module_family_or_organization_says_which(
        self, store: InMemoryEventStore, base: ModelVersionFacts, says: str
    ) -> None:
        with pytest.raises(InvalidArgument, match=says) as refused:
            await commands_with(store, FakeRegistry(base)).create(fine_tune(), ALICE)

        assert refused.value.field == "base_version_id"

    async def test_an_unreachable_registry_is_retryable_and_creates_nothing(
        self, store: InMemoryEventStore
    ) -> None:
        registry = FakeRegistry(BASE)
        registry.failure = DependencyUnavailable("registry-svc could not confirm model version mv-7")

        with pytest.raises(DependencyUnavailable):
            await commands_with(store, registry).create(fine_tune(), ALICE)

        assert await store.read_all() == []

    async def test_without_a_registry_a_base_cannot_be_checked(self, store: InMemoryEventStore) -> None:
        with pytest.raises(IllegalTransition, match="not connected to registry-svc"):
            await commands_with(store, None).create(fine_tune(), ALICE)

    async def test_bad_fields_are_reported_before_the_registry_is_asked(
        self, store: InMemoryEventStore
    ) -> None:
        registry = FakeRegistry(BASE)

        with pytest.raises(InvalidArgument, match=r"hyperparameters\.epochs"):
            await commands_with(store, registry).create(fine_tune(hyperparameters={"epochs": 0}), ALICE)

        assert registry.asked == []
