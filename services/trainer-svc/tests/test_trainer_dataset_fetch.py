"""Fetching a published version from a fake DatasetService into the cache: verified, and only once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from trainer_dataset_fake_service import FakeDatasetService, serving_fake
from trainer_dataset_samples import (
    SampleFile,
    blob_csv_files,
    blob_path,
    manifest_of,
    materialize_by_hand,
)

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_grpc import RenewingToken, Role, channel
from modelyard_grpc.testing import TEST_ISSUER, verifier_for
from modelyard_trainer.datasets import versions
from modelyard_trainer.datasets.versions import VersionFetcher, parse_version_uri
from modelyard_trainer.training import TrainingDataError
from modelyard_trainer.training.data import load_training_data
from modelyard_trainer.training.version_cache import VersionCache

URI = "dataset://ds-1/1"


class Fetching:
    """A fake dataset-svc with version ds-1/1 (two CSV files), and a fetcher into `cache`."""

    def __init__(
        self, service: FakeDatasetService, fetcher: VersionFetcher, cache: Path, target: str
    ) -> None:
        self.service, self.fetcher, self.cache, self.target = service, fetcher, cache, target
        self.files = blob_csv_files(60)
        service.publish(manifest_of(self.files, task="none"), {f.sha256: f.data for f in self.files})


@pytest.fixture
async def fetching(tmp_path: Path) -> AsyncIterator[Fetching]:
    service = FakeDatasetService()
    async with (
        serving_fake(service) as target,
        channel(target, RenewingToken(TEST_ISSUER, "trainer-a", [Role.TRAINER])) as ch,
    ):
        yield Fetching(service, VersionFetcher(ch, VersionCache(tmp_path), target), tmp_path, target)


def _leftovers(cache: Path) -> list[Path]:
    return [path for path in cache.rglob("*") if path.name.endswith(".partial")]


async def test_a_version_is_materialized_as_verified_blobs_and_its_manifest(fetching: Fetching) -> None:
    manifest = await fetching.fetcher.materialize(URI)

    assert manifest == fetching.cache / "versions" / "ds-1" / "1" / "manifest.json"
    expected = fetching.service.manifests[("ds-1", 1)]
    assert manifest.read_bytes() == expected
    assert (manifest.parent / "manifest.sha256").read_text().strip() == hashlib.sha256(expected).hexdigest()
    assert all(blob_path(fetching.cache, f.sha256).read_bytes() == f.data for f in fetching.files)
    hp = validate_hyperparameters("tabular_classifier", {"epochs": 1, "target_column": "label"})
    assert len(load_training_data("tabular_classifier", manifest.as_uri(), hp).val_x) == 20
    principal = verifier_for().verify(fetching.service.tokens[0].removeprefix("Bearer "))
    assert principal.roles == {"trainer"}


async def test_cached_blobs_are_not_downloaded_again(fetching: Fetching) -> None:
    await fetching.fetcher.materialize(URI)
    gone = fetching.files[1]
    blob_path(fetching.cache, gone.sha256).unlink()

    await fetching.fetcher.materialize(URI)
    await fetching.fetcher.materialize(URI)

    assert fetching.service.downloads == [[f.sha256 for f in _by_id(fetching.files)], [gone.sha256]]


async def test_a_large_version_is_asked_for_in_batches_of_hashes(
    fetching: Fetching, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versions, "_HASHES_PER_REQUEST", 1)

    await fetching.fetcher.materialize(URI)

    assert fetching.service.downloads == [[f.sha256] for f in _by_id(fetching.files)]
    assert all(blob_path(fetching.cache, f.sha256).read_bytes() == f.data for f in fetching.files)


async def test_batches_also_stop_at_the_byte_cap_of_one_download(
    fetching: Fetching, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _by_id(fetching.files)
    monkeypatch.setattr(versions, "_BYTES_PER_REQUEST", len(files[0].data))  # one sample's worth

    await fetching.fetcher.materialize(URI)

    assert fetching.service.downloads == [[f.sha256] for f in files]


async def test_a_manifest_over_the_grpc_message_limit_reaches_the_trainer(
    fetching: Fetching, tmp_path: Path
) -> None:
    # 20,000 samples with long names: a manifest of about 7 MB, over gRPC's 4 MiB per message.
    files = [
        SampleFile(f"{index:05d}-{'x' * 150}.csv", f"row,{index}\n".encode(), "train")
        for index in range(20_000)
    ]
    manifest = manifest_of(files, task="none", version=2)
    fetching.service.publish(manifest, {f.sha256: f.data for f in files})
    data = fetching.service.manifests[("ds-1", 2)]
    assert len(data) > 5 * (1 << 20)
    materialize_by_hand(tmp_path, files[1:], manifest)  # every blob but one is cached already
    (tmp_path / "versions" / "ds-1" / "2" / "manifest.json").unlink()

    path = await fetching.fetcher.materialize("dataset://ds-1/2")

    assert path.read_bytes() == data
    assert fetching.service.manifest_streams == 1
    assert fetching.service.downloads == [[files[0].sha256]]


async def test_a_sample_whose_bytes_hash_differently_is_refused_and_not_cached(fetching: Fetching) -> None:
    lied_about = fetching.files[0]
    forged = bytearray(lied_about.data)
    forged[-2] ^= 1  # same size, one bit off: only the hash can tell
    fetching.service.forged[lied_about.sha256] = bytes(forged)

    with pytest.raises(
        TrainingDataError, match=rf"{lied_about.sample_id} \({lied_about.filename}\).*SHA-256 .*discarded"
    ):
        await fetching.fetcher.materialize(URI)

    assert not blob_path(fetching.cache, lied_about.sha256).exists()
    assert not (fetching.cache / "versions" / "ds-1" / "1" / "manifest.json").exists()
    assert _leftovers(fetching.cache) == []


async def test_a_sample_cut_short_is_refused(fetching: Fetching) -> None:
    cut = fetching.files[0]
    fetching.service.truncated.add(cut.sha256)

    with pytest.raises(TrainingDataError, match=rf"\({cut.filename}\).*ended before its last chunk"):
        await fetching.fetcher.materialize(URI)
    assert _leftovers(fetching.cache) == []


async def test_a_download_that_stalls_fails_instead_of_hanging(fetching: Fetching, tmp_path: Path) -> None:
    fetching.service.stalled.add(fetching.files[1].sha256)
    async with channel(fetching.target, RenewingToken(TEST_ISSUER, "trainer-a", [Role.TRAINER])) as ch:
        impatient = VersionFetcher(ch, VersionCache(tmp_path / "other"), fetching.target, stall_timeout_s=0.3)

        with pytest.raises(TrainingDataError, match=r"stalled: nothing arrived for 0.3 s"):
            await asyncio.wait_for(impatient.materialize(URI), 30)
    assert _leftovers(tmp_path / "other") == []


async def test_an_unknown_version_fails_with_a_reason_to_act_on(fetching: Fetching) -> None:
    with pytest.raises(
        TrainingDataError, match=r"dataset://ds-1/7 is not a published version .*has no version 7"
    ):
        await fetching.fetcher.materialize("dataset://ds-1/7")


async def test_an_unreachable_dataset_svc_fails_the_fetch(tmp_path: Path) -> None:
    async with channel("127.0.0.1:9", "token") as ch:
        fetcher = VersionFetcher(ch, VersionCache(tmp_path), "127.0.0.1:9")
        with pytest.raises(TrainingDataError, match=r"dataset-svc at 127\.0\.0\.1:9 is unreachable"):
            await fetcher.materialize(URI)


async def test_file_uris_are_trained_on_as_they_are(fetching: Fetching) -> None:
    assert await fetching.fetcher.training_uri("file:///data/x.csv") == "file:///data/x.csv"
    assert fetching.service.tokens == []


@pytest.mark.parametrize(
    "uri", ["dataset://ds-1", "dataset://ds-1/0", "dataset://ds-1/latest", "dataset:///1"]
)
def test_a_dataset_uri_must_name_one_published_version(uri: str) -> None:
    with pytest.raises(TrainingDataError, match="does not name a published version"):
        parse_version_uri(uri)


def _by_id(files: list[SampleFile]) -> list[SampleFile]:
    return sorted(files, key=lambda f: f.sample_id)
