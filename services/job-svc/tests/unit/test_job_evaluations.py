"""Evaluation runs the registry asks for: created once, outside the plan's quota, failed at once when
they cannot run, and waiting (never lost) while dataset-svc cannot answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from job_builders import evaluation_report, evaluation_requested

from modelyard_events.caller import Caller
from modelyard_events.db import is_transient
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.schemas.registry import MODULE_STREAM, ModelEvaluated, ModelEvaluationRequested
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import DependencyFailed, DependencyUnavailable
from modelyard_job.app import JobCommands
from modelyard_job.app.dataset_gate import VersionFacts
from modelyard_job.consumers import EvaluationRequestReaction
from modelyard_job.domain import JobState, plan_named

BOB = Caller(Actor(subject="bob", roles=("super_admin",)), "corr-9")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class FakeDatasets:
    """dataset-svc's answer about every version: `facts`, or `failure` raised."""

    def __init__(self, **changes: Any) -> None:
        fields: dict[str, Any] = {
            "dataset_id": "digits",
            "version": 1,
            "org_id": "org-acme",
            "task": "classification",
            "ready": True,
            "failed_checks": [],
        }
        self.facts = VersionFacts(**(fields | changes))
        self.failure: Exception | None = None

    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        if self.failure is not None:
            raise self.failure
        return self.facts


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


def commands_with(store: InMemoryEventStore, datasets: FakeDatasets, **options: Any) -> JobCommands:
    # org-acme is on the Professional plan, which includes no training jobs at all.
    return JobCommands(
        store,
        lambda org: plan_named("professional"),
        lambda: NOW,
        datasets,
        evaluation_priority=70,
        **options,
    )


class TestEvaluationJobs:
    async def test_the_request_becomes_a_queued_evaluation_job_outside_the_plans_quota(
        self, store: InMemoryEventStore
    ) -> None:
        job = await commands_with(store, FakeDatasets()).create_evaluation(evaluation_requested(), BOB)

        assert (job.job_id, job.kind, job.state, job.priority) == ("j-12", "evaluation", JobState.QUEUED, 70)
        assert [e.type for e in await store.read_all()] == ["JobCreated", "JobQueued"]  # no JobQuotaUsed
        assert (await store.read_all())[0].actor.subject == "bob"

    async def test_the_same_request_twice_creates_one_job(self, store: InMemoryEventStore) -> None:
        commands = commands_with(store, FakeDatasets())

        await commands.create_evaluation(evaluation_requested(), BOB)
        again = await commands.create_evaluation(evaluation_requested(), BOB)

        assert again.version == 2
        assert len(await store.read_all()) == 2

    @pytest.mark.parametrize(
        ("datasets", "says"),
        [
            (FakeDatasets(ready=False, failed_checks=["samples_per_class: 2"]), "is not ready for training"),
            (FakeDatasets(org_id="globex"), "is not in your organization"),
        ],
        ids=["not-ready", "other-org"],
    )
    async def test_data_it_cannot_run_on_fails_the_job_at_once_saying_why(
        self, store: InMemoryEventStore, datasets: FakeDatasets, says: str
    ) -> None:
        job = await commands_with(store, datasets).create_evaluation(evaluation_requested(), BOB)

        failed = (await store.read_all())[-1]
        assert job.state is JobState.FAILED
        assert failed.type == "JobFailed"
        assert failed.data["reason"].startswith("not started: dataset://digits/1")
        assert says in failed.data["reason"]

    async def test_a_local_file_where_files_are_not_allowed_fails_the_job(
        self, store: InMemoryEventStore
    ) -> None:
        request = evaluation_requested(dataset_uri="file:///data/digits.npz")

        job = await commands_with(store, FakeDatasets()).create_evaluation(request, BOB)

        assert job.state is JobState.FAILED

    async def test_dataset_svc_unreachable_creates_nothing_so_the_request_is_tried_again(
        self, store: InMemoryEventStore
    ) -> None:
        datasets = FakeDatasets()
        datasets.failure = DependencyUnavailable("dataset-svc could not confirm dataset://digits/1")

        with pytest.raises(DependencyUnavailable):
            await commands_with(store, datasets).create_evaluation(evaluation_requested(), BOB)

        assert await store.read_all() == []


async def delivered(event: ModelEvaluationRequested | ModelEvaluated) -> Any:
    """The registry's event as an envelope from its log (stream model_module)."""
    registry_log = InMemoryEventStore()
    context = CommandContext(actor=BOB.actor, org_id="org-acme", correlation_id="corr-9")
    await registry_log.append(MODULE_STREAM, "org-acme/digit-reader", 0, [event], context)
    return (await registry_log.read_all())[0]


class TestTheReaction:
    async def test_a_requested_evaluation_is_created_as_the_requester_with_its_correlation(
        self, store: InMemoryEventStore
    ) -> None:
        reaction = EvaluationRequestReaction(commands_with(store, FakeDatasets()), "job_reactions")
        envelope = await delivered(evaluation_requested())

        await reaction.apply(evaluation_requested(), envelope, conn=None)  # type: ignore[arg-type]

        created = (await store.read_all())[0]
        assert (created.actor.subject, created.correlation_id) == ("bob", "corr-9")
        assert created.causation_id == str(envelope.event_id)

    async def test_other_registry_events_create_nothing(self, store: InMemoryEventStore) -> None:
        reaction = EvaluationRequestReaction(commands_with(store, FakeDatasets()), "job_reactions")
        evaluated = ModelEvaluated(
            version_id="mv-7", evaluation_id="ev-1", job_id="j-12", report=evaluation_report()
        )

        await reaction.apply(evaluated, await delivered(evaluated), conn=None)  # type: ignore[arg-type]

        assert await store.read_all() == []

    @pytest.mark.parametrize(
        "failure",
        [DependencyUnavailable("dataset-svc is down"), DependencyFailed("dataset-svc refused the token")],
    )
    async def test_dataset_svc_failing_is_a_connection_error_the_runner_retries_not_a_poison_event(
        self, store: InMemoryEventStore, failure: Exception
    ) -> None:
        datasets = FakeDatasets()
        datasets.failure = failure
        reaction = EvaluationRequestReaction(commands_with(store, datasets), "job_reactions")

        with pytest.raises(ConnectionError, match="evaluation job j-12 waits") as raised:
            await reaction.apply(
                evaluation_requested(),
                await delivered(evaluation_requested()),
                conn=None,  # type: ignore[arg-type]
            )

        assert is_transient(raised.value)  # the runner rolls back and reads it again; no dead letter
        assert await store.read_all() == []
