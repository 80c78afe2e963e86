"""What one DownloadSamples call sends: each hash once, within the caps the trainer's batches obey."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_dataset.domain.downloads import samples_to_send
from modelyard_events.domain_errors import InvalidArgument, NotFound
from modelyard_events.schemas.datasets import LabelSchemaData
from modelyard_events.schemas.downloads import (
    MAX_BYTES_PER_DOWNLOAD,
    MAX_SAMPLES_PER_DOWNLOAD,
    download_batches,
)
from modelyard_events.schemas.manifest import DatasetManifest, ManifestSample


def _sha(index: int) -> str:
    return f"{index:064x}"


def _manifest(sizes: list[int]) -> DatasetManifest:
    samples = [
        ManifestSample(
            sample_id=f"ds-1:{_sha(i)[:24]}",
            filename=f"{i}.csv",
            sha256=_sha(i),
            size_bytes=size,
            media_type="text/csv",
            label=None,
            split="train",
            agreement=1.0,
        )
        for i, size in enumerate(sizes)
    ]
    return DatasetManifest(
        dataset_id="ds-1",
        version=1,
        org_id="org-1",
        name="d",
        ai_module="m",
        environment="dev",
        label_schema=LabelSchemaData(task="none"),
        seed=1,
        train_fraction=0.8,
        val_fraction=0.1,
        samples=samples,
    )


class TestWhatOneDownloadSends:
    def test_a_hash_asked_for_twice_is_sent_once_in_the_order_first_asked(self) -> None:
        manifest = _manifest([10, 20, 30])

        sent = samples_to_send(manifest, [_sha(2), _sha(0), _sha(2), _sha(0), _sha(2)])

        assert [s.sha256 for s in sent] == [_sha(2), _sha(0)]

    def test_no_hash_asked_for_means_every_sample_of_the_version(self) -> None:
        assert [s.sha256 for s in samples_to_send(_manifest([1, 2]), [])] == [_sha(0), _sha(1)]

    def test_more_hashes_than_the_cap_are_refused_naming_it_even_when_they_repeat(self) -> None:
        asked = [_sha(0)] * (MAX_SAMPLES_PER_DOWNLOAD + 1)

        with pytest.raises(InvalidArgument, match=f"at most {MAX_SAMPLES_PER_DOWNLOAD}: ask in batches"):
            samples_to_send(_manifest([1]), asked)

    def test_more_bytes_than_the_cap_are_refused_naming_it(self) -> None:
        manifest = _manifest([MAX_BYTES_PER_DOWNLOAD // 2 + 1] * 2)

        with pytest.raises(InvalidArgument, match=f"at most {MAX_BYTES_PER_DOWNLOAD} bytes"):
            samples_to_send(manifest, [_sha(0), _sha(1)])

    def test_one_sample_larger_than_the_byte_cap_is_served_alone(self) -> None:
        manifest = _manifest([MAX_BYTES_PER_DOWNLOAD * 3])

        assert [s.sha256 for s in samples_to_send(manifest, [_sha(0), _sha(0)])] == [_sha(0)]

    def test_a_whole_version_over_the_caps_is_refused_so_the_client_asks_in_batches(self) -> None:
        with pytest.raises(InvalidArgument, match="ask in batches"):
            samples_to_send(_manifest([1] * (MAX_SAMPLES_PER_DOWNLOAD + 1)), [])

    def test_a_hash_outside_the_version_is_not_found(self) -> None:
        with pytest.raises(NotFound, match=f"no sample with sha256 {_sha(9)}"):
            samples_to_send(_manifest([1]), [_sha(9)])


class TestTheClientsBatches:
    @given(st.lists(st.integers(1, 3 * MAX_BYTES_PER_DOWNLOAD // 2), max_size=40), st.integers(1, 7))
    def test_every_batch_is_served_and_every_sample_asked_for_once(self, sizes: list[int], cap: int) -> None:
        manifest = _manifest(sizes)
        pairs = [(s.sha256, s.size_bytes) for s in manifest.samples]

        batches = download_batches(pairs + pairs, max_samples=cap)

        assert [sha for batch in batches for sha in batch] == [sha for sha, _ in pairs]
        for batch in batches:
            assert len(batch) <= cap
            assert samples_to_send(manifest, batch)  # the server's caps accept it

    def test_the_caps_of_the_client_are_the_servers(self) -> None:
        pairs = [(_sha(i), 1) for i in range(MAX_SAMPLES_PER_DOWNLOAD + 1)]

        assert [len(batch) for batch in download_batches(pairs)] == [MAX_SAMPLES_PER_DOWNLOAD, 1]
