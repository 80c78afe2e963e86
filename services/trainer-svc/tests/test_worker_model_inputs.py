"""Runs of dispatches that name a model version: evaluation, and fine-tuning from a signed base.

The version is fetched from a fake registry-svc (GetDownloadUrl) and the real download endpoint of
libs/artifacts, which demands the trainer's bearer token; the artifact is one a short real training made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from trainer_registry_fake import OTHER_KEY, REGISTRY_KEY, FakeRegistry, serving_registry
from trainer_samples import RecordingObserver, blobs, write_csv
from worker_samples import dispatch_of, envelope_of, settings_for

from modelyard_devstack.processes import eventually
from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_events.schemas.jobs import ModelInput
from modelyard_events.schemas.training import TRAINER_EVENTS, EvaluationCompleted, TrainingCompleted
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import RenewingToken, Role, channel
from modelyard_grpc.testing import TEST_ISSUER
from modelyard_trainer.reports import report_context
from modelyard_trainer.training import Completed, TrainingControl, TrainingSpec, run_training
from modelyard_trainer.worker.intake import ControlRun, StartRun
from modelyard_trainer.worker.model_inputs import ModelInputFetcher
from modelyard_trainer.worker.runs import Runs, unchanged_uri
from modelyard_trainer.worker.spec import path_of_file_uri

# Adam moves each weight by about lr per step: with 1e-6 a fine-tuned run barely leaves its start.
STILL = {"target_column": "animal", "epochs": 1, "lr": 1e-6}


def animals(path: Path, rows: int, seed: int = 7) -> Path:
    features, names = blobs(rows, seed)
    table = [[*map(float, row), name] for row, name in zip(features, names, strict=True)]
    return write_csv(path, ["a", "b", "c", "animal"], table)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Completed:
    """A tabular classifier (cat/dog) trained for a few epochs: the registered version."""
    folder = tmp_path_factory.mktemp("base")
    hyperparameters = validate_hyperparameters(
        "tabular_classifier", {"target_column": "animal", "epochs": 4, "lr": 1e-2}
    )
    dataset = animals(folder / "animals.csv", 300)
    spec = TrainingSpec(
        "job-b", 1, "tabular_classifier", dataset.as_uri(), hyperparameters, folder / "run", device="cpu"
    )
    outcome = run_training(spec, RecordingObserver(), TrainingControl())
    assert isinstance(outcome, Completed)
    return outcome


@dataclass
class Worker:
    """Runs with a registry to fetch model versions from, over an in-memory report store."""

    root: Path
    registry: FakeRegistry
    runs: Runs
    store: InMemoryEventStore
    finished: list[str]

    def start(self, model: ModelInput, kind: str, dataset: Path, **fields: Any) -> str:
        dispatch = dispatch_of(
            family="tabular_classifier",
            dataset_uri=dataset.as_uri(),
            hyperparameters=STILL,
            kind=kind,
            model_input=model,
            **fields,
        )
        self.runs.start(StartRun(dispatch, report_context("trainer-a", envelope_of(dispatch))))
        return dispatch.dispatch_id

    async def reports(self, dispatch_id: str) -> list[Any]:
        async def finished() -> bool:
            return dispatch_id in self.finished

        await eventually(finished, timeout_s=120, what=f"the end of {dispatch_id}")
        # The run's log lines are tested on their own (test_worker_run_logs.py).
        envelopes = await self.store.read_stream(dispatch_id)
        return [TRAINER_EVENTS.decode(e) for e in envelopes if e.type != "TrainingLogged"]

    async def failure_of(self, dispatch_id: str) -> str:
        *phases, failed = await self.reports(dispatch_id)
        # It says what it was doing (fetching first, then maybe loading) before saying why it failed.
        assert [p.phase for p in phases][:1] == ["fetching"]
        assert {p.type_name for p in phases} == {"TrainingPhaseChanged"}
        assert failed.type_name == "TrainingFailed"
        return str(failed.reason)


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    registry = FakeRegistry(tmp_path / "registry-blobs")
    settings = settings_for(tmp_path / "runs", registry_public_keys=[REGISTRY_KEY.public_text()])
    token = RenewingToken(TEST_ISSUER, "trainer-a", [Role.TRAINER], audience=("registry-svc",))
    store, finished = InMemoryEventStore(), list[str]()
    async with serving_registry(registry) as target, channel(target, token) as registry_svc:
        fetcher = ModelInputFetcher(
            registry_svc,
            token,
            settings.manifest_verifier(),
            settings.model_cache,
            settings.model_staging,
            target=target,
        )
        runs = Runs(settings, store, finished.append, unchanged_uri, fetcher.artifact_for)
        try:
            yield Worker(tmp_path, registry, runs, store, finished)
        finally:
            await runs.shutdown()


def weights(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, weights_only=True)["state_dict"]
    return state


async def test_an_evaluation_dispatch_reports_the_versions_figures_on_the_validation_split(
    worker: Worker, base: Completed
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)  # a draft: no manifest needed
    dataset = base.artifact_path.parent.parent / "animals.csv"

    reports = await worker.reports(worker.start(model, "evaluation", dataset))

    assert [r.type_name for r in reports] == [
        "TrainingPhaseChanged",
        "TrainingStarted",
        "EvaluationCompleted",
    ]
    assert (reports[1].device, reports[1].epochs_total) == ("cpu", 0)
    evaluated = reports[-1]
    assert isinstance(evaluated, EvaluationCompleted)
    figures = evaluated.report
    assert (figures.dataset_uri, figures.split, figures.device) == (dataset.as_uri(), "val", "cpu")
    assert figures.samples == 60  # the 20 % the base held out of 300 rows
    assert figures.accuracy > 0.9  # two well-separated classes
    assert [c.label for c in figures.per_class] == ["cat", "dog"]
    assert figures.classes_total == 2
    assert sum(c.support for c in figures.per_class) == figures.samples
    assert figures.confusion is not None
    assert sum(map(sum, figures.confusion)) == figures.samples
    assert 0 < figures.latency_p50_ms <= figures.latency_p95_ms
    assert worker.registry.url_callers == ["trainer-a"]
    assert len(worker.registry.downloads) == 1
    assert str(worker.registry.downloads[0]).startswith("Bearer ")


async def test_a_fetched_version_is_reused_and_a_damaged_copy_fetched_again(
    worker: Worker, base: Completed
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)
    dataset = base.artifact_path.parent.parent / "animals.csv"
    cached = worker.root / "runs" / "model-cache" / f"{model.artifact_sha256}.pt"

    await worker.reports(worker.start(model, "evaluation", dataset))
    await worker.reports(worker.start(model, "evaluation", dataset))
    assert len(worker.registry.downloads) == 1
    cached.write_bytes(b"not the model")
    last = await worker.reports(worker.start(model, "evaluation", dataset))

    assert len(worker.registry.downloads) == 2
    assert last[-1].type_name == "EvaluationCompleted"
    assert cached.read_bytes() == base.artifact_path.read_bytes()


async def test_a_cancel_before_the_evaluation_ends_it_without_figures(
    worker: Worker, base: Completed
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)
    dispatch_id = worker.start(model, "evaluation", base.artifact_path.parent.parent / "animals.csv")
    worker.runs.control(ControlRun(dispatch_id, "cancel"))

    reports = await worker.reports(dispatch_id)

    assert [r.type_name for r in reports] == ["TrainingPhaseChanged", "TrainingStarted", "TrainingCancelled"]


async def test_a_fine_tuning_dispatch_with_a_signed_base_starts_from_its_weights(
    worker: Worker, base: Completed
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)
    worker.registry.approve(model)

    reports = await worker.reports(
        worker.start(model, "training", animals(worker.root / "more.csv", 200, seed=3))
    )

    completed = reports[-1]
    assert isinstance(completed, TrainingCompleted)
    assert completed.dataset_manifest_sha256 is None  # a plain file, not a dataset version
    start, after = weights(base.artifact_path), weights(path_of_file_uri(completed.artifact_uri))
    assert all(torch.allclose(start[name], after[name], atol=1e-4) for name in start)
    assert completed.metrics["val_accuracy"] > 0.9  # the base's skill after one tiny-lr epoch


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("draft", "the registry sent no signed manifest: the version is not approved"),
        ("other key", "which is not pinned here"),
        ("other version", "its signed manifest vouches for version ver-9"),
        ("tampered", "expected SHA-256"),
    ],
)
async def test_a_base_that_cannot_be_trusted_fails_the_run_saying_why(
    worker: Worker, base: Completed, case: str, reason: str
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path, semantic_version="1.2.0")
    if case == "other key":
        worker.registry.approve(model, key=OTHER_KEY)
    elif case == "other version":
        worker.registry.approve(model, version_id="ver-9")
    elif case != "draft":
        worker.registry.approve(model)
    if case == "tampered":
        worker.registry.tamper(model)

    failure = await worker.failure_of(worker.start(model, "training", worker.root / "unused.csv"))

    assert failure.startswith("base version 1.2.0 (ver-1) could not be fetched: ")
    assert reason in failure
    assert not (worker.root / "runs" / "model-cache" / f"{model.artifact_sha256}.pt").exists()


async def test_a_version_unknown_to_the_registry_fails_the_evaluation_naming_it(
    worker: Worker, base: Completed
) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)
    missing = model.model_copy(update={"version_id": "ver-404"})

    failure = await worker.failure_of(worker.start(missing, "evaluation", worker.root / "unused.csv"))

    assert failure.startswith("version 1.0.0 (ver-404) to evaluate could not be fetched: ")
    assert "NOT_FOUND" in failure


async def test_a_resumed_fine_tuning_run_does_not_fetch_its_base(worker: Worker, base: Completed) -> None:
    model = worker.registry.register("ver-1", base.artifact_path)  # not approved: a fetch would fail
    checkpoint = worker.root / "nowhere.pt"

    failure = await worker.failure_of(
        worker.start(model, "training", worker.root / "more.csv", checkpoint_uri=checkpoint.as_uri())
    )

    assert worker.registry.url_callers == []
    assert "base version" not in failure  # it failed on its missing data instead
