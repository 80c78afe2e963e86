"""`yard datasets upload --provenance FILE.csv`: the sheet is read and checked before anything is sent
(every problem names its line), each file's header carries its row; `datasets show --samples` shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dataset_fakes import FakeDatasetSvc, sample
from google.protobuf.timestamp_pb2 import Timestamp
from yard_runner import Yard

from modelyard_cli.upload_plan import FileProvenance, UploadPlanError, read_provenance_sheet

HEADER = "filename,source_camera_id,captured_at,metadata\n"
NAMES = {"a.png", "b.png"}


def sheet(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "provenance.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_rows_give_each_named_file_its_provenance(tmp_path: Path) -> None:
    path = sheet(
        tmp_path,
        'a.png,cam-7,2026-03-14T09:26:53Z,"{""site"": ""dock 3"", ""lens"": ""wide""}"\n'
        "\n"  # a blank line is skipped
        "b.png,,,\n",
    )
    assert read_provenance_sheet(path, NAMES) == {
        "a.png": FileProvenance(
            "cam-7", datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC), {"site": "dock 3", "lens": "wide"}
        ),
        "b.png": FileProvenance(),
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("a.png,cam-7,yesterday,\n", "line 2: captured_at 'yesterday' is not an ISO 8601 time"),
        ("a.png,cam-7,2026-03-14T09:26:53,\n", "line 2: captured_at '2026-03-14T09:26:53' has no time zone"),
        ("a.png,cam-7,,{not json}\n", "line 2: metadata is not JSON"),
        ('a.png,cam-7,,"[1, 2]"\n', "line 2: metadata must be a JSON object of strings"),
        ('a.png,cam-7,,"{""n"": 1}"\n', "line 2: metadata must be a JSON object of strings"),
        ("c.png,cam-7,,\n", "line 2: c.png is not a file of this upload"),
        ("a.png,cam-7,,\na.png,cam-8,,\n", "line 3: a.png has a row already"),
        ('a.png,cam-7,,{"a": "1", "b": "2"}\n', "line 2: has 5 cells; a row holds 4 (quote a JSON object"),
    ],
)
def test_a_malformed_row_is_named_by_its_line(tmp_path: Path, body: str, words: str) -> None:
    with pytest.raises(UploadPlanError, match="nothing was sent") as refused:
        read_provenance_sheet(sheet(tmp_path, body), NAMES)
    assert words in str(refused.value)


def test_a_wrong_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadPlanError, match="line 1: the header must be filename,source_camera_id"):
        read_provenance_sheet(sheet(tmp_path, "a.png,cam\n", header="file,camera\n"), NAMES)


def test_every_bad_line_is_listed_not_only_the_first(tmp_path: Path) -> None:
    with pytest.raises(UploadPlanError) as refused:
        read_provenance_sheet(sheet(tmp_path, "a.png,,soon,\nb.png,,,{\n"), NAMES)
    assert "line 2:" in str(refused.value)
    assert "line 3:" in str(refused.value)


def test_upload_sends_each_row_in_its_file_header(
    dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.png").write_bytes(b"A" * 10)
    (files / "b.png").write_bytes(b"B" * 10)
    path = sheet(tmp_path, 'a.png,cam-7,2026-03-14T09:26:53+01:00,"{""site"": ""dock 3""}"\n')
    result = dataset_yard("datasets", "upload", "ds-1", str(files), "--provenance", str(path))
    assert result.exit_code == 0, result.output
    (messages,) = dataset_svc.requests("UploadSamples")
    headers = {m.file.filename: m.file for m in messages if m.WhichOneof("part") == "file"}
    assert headers["a.png"].source_camera_id == "cam-7"
    assert headers["a.png"].captured_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 14, 8, 26, 53, tzinfo=UTC)
    assert dict(headers["a.png"].metadata) == {"site": "dock 3"}
    assert (headers["b.png"].source_camera_id, headers["b.png"].HasField("captured_at")) == ("", False)


def test_a_bad_sheet_sends_nothing(dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"A")
    path = sheet(tmp_path, "a.png,cam-7,tomorrow,\n")
    result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path / "a.png"), "--provenance", str(path))
    assert result.exit_code != 0
    assert "line 2: captured_at 'tomorrow'" in result.output
    assert dataset_svc.requests("UploadSamples") == []


def test_show_samples_lists_their_provenance(dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
    captured = Timestamp()
    captured.FromDatetime(datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC))
    dataset_svc.samples = [
        sample(
            "s-1",
            source_camera_id="cam-7",
            captured_at=captured,
            metadata={"site": "dock 3"},
            file_url="dataset://ds-1/files/abab",
        ),
        sample("s-2"),
    ]
    result = dataset_yard("datasets", "show", "ds-1", "--samples", "labeled")
    assert result.exit_code == 0, result.output
    assert "provenance" in result.stdout
    assert "cam-7" in result.stdout
    assert "2026-03-14 09:26:53Z" in result.stdout
    assert '"site": "dock 3"' in result.stdout
    assert "dataset://ds-1/files/abab" in result.stdout


def test_show_samples_without_provenance_adds_no_table(
    dataset_yard: Yard, dataset_svc: FakeDatasetSvc
) -> None:
    dataset_svc.samples = [sample("s-1")]
    result = dataset_yard("datasets", "show", "ds-1", "--samples", "labeled")
    assert "provenance" not in result.stdout
