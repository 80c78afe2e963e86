"""A sample's provenance: caps and clock checked per file before its bytes, recorded on the sample,
and old events without it still decode (and hash over their stored payload, untouched)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from modelyard_blobs.staging import Staging
from modelyard_dataset.app.receiving import FileOpened, UploadOpened, UploadPart, UploadReceiver
from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.provenance import Provenance, checked_provenance
from modelyard_dataset.policy import may_download_files
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.datasets import (
    DATASET_EVENTS,
    METADATA_MAX_BYTES,
    METADATA_MAX_KEYS,
    AddedSample,
    LabelSchemaData,
    SamplesAdded,
)
from modelyard_events.schemas.size_bound import PAYLOAD_BOUND_BYTES, payload_bound_bytes
from modelyard_grpc import Principal, Role

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_a_full_provenance_is_kept() -> None:
    given = checked_provenance("a.png", "cam-7", NOW - timedelta(days=3), {"site": "dock 3"}, NOW)
    assert given == Provenance("cam-7", NOW - timedelta(days=3), {"site": "dock 3"})


def test_empty_values_mean_not_given() -> None:
    assert checked_provenance("a.png", "", None, {}, NOW) == Provenance()


def test_a_little_clock_skew_is_allowed_but_the_far_future_is_not() -> None:
    assert checked_provenance("a.png", None, NOW + timedelta(minutes=2), None, NOW).captured_at is not None
    with pytest.raises(InvalidArgument) as refused:
        checked_provenance("a.png", None, NOW + timedelta(days=1), None, NOW)
    assert refused.value.problems["files.a.png.captured_at"].startswith(
        "2026-12-03T12:00:00+00:00 is in the future"
    )


@pytest.mark.parametrize(
    ("camera", "metadata", "field", "words"),
    [
        ("c" * 49, None, "source_camera_id", "at most 48 characters"),
        ("cam 7; drop", None, "source_camera_id", "must be an identifier"),
        (None, {f"k{i}": "v" for i in range(METADATA_MAX_KEYS + 1)}, "metadata", "17 keys; at most 16"),
        (None, {"k" * 65: "v"}, "metadata", "at most 64 are allowed"),
        (None, {"note": "v" * 257}, "metadata", "is 257 characters; at most 256"),
        (None, {f"k{i}": "v" * 200 for i in range(3)}, "metadata", "bytes as JSON; at most 512"),
        (None, {"": "v"}, "metadata", "empty key"),
    ],
)
def test_each_oversized_or_malformed_part_is_named_with_its_file(
    camera: str | None, metadata: dict[str, str] | None, field: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        checked_provenance("cam/a.png", camera, None, metadata, NOW)
    assert list(refused.value.problems) == [f"files.cam/a.png.{field}"]
    assert words in refused.value.problems[f"files.cam/a.png.{field}"]


def test_the_schema_refuses_what_the_service_would_and_stays_bounded() -> None:
    base = {
        "sample_id": "s",
        "filename": "a.png",
        "sha256": "a" * 64,
        "size_bytes": 1,
        "media_type": "image/png",
    }
    with pytest.raises(ValidationError, match="bytes of JSON"):
        AddedSample(**base, metadata={f"k{i}": "é" * 100 for i in range(4)})
    with pytest.raises(ValidationError, match="keys"):
        AddedSample(**base, metadata={f"k{i}": "" for i in range(METADATA_MAX_KEYS + 1)})
    with pytest.raises(ValidationError, match="time zone"):
        AddedSample(**base, captured_at=datetime(2026, 1, 1))
    assert METADATA_MAX_BYTES * 64 < PAYLOAD_BOUND_BYTES
    assert payload_bound_bytes(SamplesAdded) <= PAYLOAD_BOUND_BYTES


def test_a_sample_recorded_before_provenance_still_decodes_without_it() -> None:
    stored = {
        "dataset_id": "ds-1",
        "upload_id": "upl-1",
        "samples": [
            {"sample_id": "s", "filename": "a.png", "sha256": "a" * 64, "size_bytes": 1, "media_type": "x"}
        ],
    }
    decoded = DATASET_EVENTS.decode_payload("SamplesAdded", 1, stored)
    assert isinstance(decoded, SamplesAdded)
    sample = decoded.samples[0]
    assert (sample.source_camera_id, sample.captured_at, sample.metadata) == (None, None, None)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=7).save(buffer, format="PNG")
    return buffer.getvalue()


async def parts(*items: UploadPart) -> AsyncIterator[UploadPart]:
    for item in items:
        yield item


async def allow(_: str) -> None:
    return None


async def test_received_files_carry_their_provenance_into_the_sample(tmp_path: Path) -> None:
    receive = UploadReceiver(Staging(tmp_path / "staging"), max_file_bytes=10_000, clock=lambda: NOW)
    image = png_bytes()
    header = FileOpened("a.png", len(image), "cam-7", NOW - timedelta(hours=1), {"lens": "wide"})
    upload = await receive.receive(parts(UploadOpened("ds-1", None, 1), header, image), allow)
    dataset = Dataset(dataset_id="ds-1", org_id="org-1", label_schema=LabelSchemaData(task="classification"))
    added = dataset.plan_upload([f.file for f in upload.files]).added
    assert (added[0].source_camera_id, added[0].captured_at, added[0].metadata) == (
        "cam-7",
        NOW - timedelta(hours=1),
        {"lens": "wide"},
    )
    upload.discard_staged()


async def test_a_bad_header_is_refused_before_its_bytes_and_leaves_nothing_staged(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    receive = UploadReceiver(Staging(root), max_file_bytes=10_000, clock=lambda: NOW)
    header = FileOpened("a.png", None, None, NOW + timedelta(days=30), None)
    with pytest.raises(InvalidArgument) as refused:
        await receive.receive(parts(UploadOpened("ds-1", None, 1), header, b"never staged"), allow)
    assert "files.a.png.captured_at" in refused.value.problems
    assert [p for p in root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("roles", "shown"),
    [
        ({Role.SUPER_ADMIN}, True),
        ({Role.ORG_ADMIN}, True),
        ({Role.AUDITOR}, True),
        ({Role.TRAINER}, True),
        ({Role.EDGE}, False),
        (set(), False),
    ],
)
def test_the_file_url_is_for_roles_that_may_download_the_files(roles: set[Role], shown: bool) -> None:
    assert may_download_files(Principal("someone", "org-1", frozenset(roles))) is shown
