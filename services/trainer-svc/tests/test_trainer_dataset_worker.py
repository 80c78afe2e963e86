"""A worker's run of a `dataset://` dispatch: fetched before training, or failed with the fetch's reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from trainer_dataset_fake_service import FakeDatasetService, serving_fake
from trainer_dataset_samples import blob_csv_files, manifest_of
from worker_samples import dispatch_of, envelope_of, settings_for

from modelyard_devstack.processes import eventually
from modelyard_events.store.memory import InMemoryEventStore
from modelyard_grpc import RenewingToken, Role, channel
from modelyard_grpc.testing import TEST_ISSUER, TEST_TOKEN_PUBLIC_KEYS
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.datasets.versions import VersionFetcher
from modelyard_trainer.reports import report_context
from modelyard_trainer.training.version_cache import VersionCache
from modelyard_trainer.worker.intake import StartRun
from modelyard_trainer.worker.runs import Runs


async def _run_to_the_end(tmp_path: Path, dataset_uri: str) -> list[dict[str, object]]:
    service = FakeDatasetService()
    files = blob_csv_files(60)
    service.publish(manifest_of(files, task="none"), {f.sha256: f.data for f in files})
    settings = settings_for(tmp_path)
    store, finished = InMemoryEventStore(), list[str]()
    async with (
        serving_fake(service) as target,
        channel(target, RenewingToken(TEST_ISSUER, "trainer-a", [Role.TRAINER])) as ch,
    ):
        fetcher = VersionFetcher(ch, VersionCache(settings.dataset_cache), target)
        runs = Runs(settings, store, finished.append, fetcher.training_uri)
        dispatch = dispatch_of(
            family="tabular_classifier",
            dataset_uri=dataset_uri,
            hyperparameters={"epochs": 1, "target_column": "label"},
        )
        runs.start(StartRun(dispatch, report_context("trainer-a", envelope_of(dispatch))))

        async def ended() -> bool:
            return dispatch.dispatch_id in finished

        try:
            await eventually(ended, timeout_s=60, what="the end of the run")
        finally:
            await runs.shutdown()
    # The run's log lines are tested on their own (test_worker_run_logs.py).
    envelopes = await store.read_stream(dispatch.dispatch_id)
    return [{"type": e.type, **e.data} for e in envelopes if e.type != "TrainingLogged"]


async def test_a_dispatch_of_a_published_version_trains_on_the_versions_split_and_names_it(
    tmp_path: Path,
) -> None:
    reports = await _run_to_the_end(tmp_path, "dataset://ds-1/1")

    started = next(r for r in reports if r["type"] == "TrainingStarted")
    assert (started["train_samples"], started["val_samples"]) == (60, 20)
    assert reports[-1]["type"] == "TrainingCompleted"
    version = tmp_path / "dataset-cache" / "versions" / "ds-1" / "1"
    manifest = (version / "manifest.json").read_bytes()
    assert reports[-1]["dataset_manifest_sha256"] == hashlib.sha256(manifest).hexdigest()


async def test_a_dispatch_of_an_unknown_version_fails_with_the_fetchs_reason(tmp_path: Path) -> None:
    reports = await _run_to_the_end(tmp_path, "dataset://ds-1/9")

    assert [r["type"] for r in reports] == ["TrainingPhaseChanged", "TrainingFailed"]
    assert reports[0]["phase"] == "fetching"
    assert "dataset://ds-1/9 is not a published version" in str(reports[1]["reason"])


def test_the_dataset_svc_target_and_cache_come_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATASET_SVC_TARGET", "datasets:7000")

    settings = TrainerSettings(
        database_url="postgresql://db/x",
        kafka_bootstrap_servers="b:9092",
        token_public_keys=TEST_TOKEN_PUBLIC_KEYS,
        trainer_root=tmp_path,
    )

    assert settings.dataset_svc_target == "datasets:7000"
    assert settings.dataset_cache == tmp_path / "dataset-cache"
    assert TrainerSettings.model_fields["dataset_svc_target"].default == "127.0.0.1:50053"
