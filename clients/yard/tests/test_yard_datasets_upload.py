"""`yard datasets upload` against the fake dataset-svc, and the planning of which files go in which batch."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from dataset_fakes import FakeDatasetSvc, ReceivedFile, received_files
from rich.console import Console
from yard_runner import Yard

from modelyard.v1 import datasets_pb2
from modelyard_cli.commands import dataset_upload
from modelyard_cli.commands.dataset_upload import CHUNK_BYTES
from modelyard_cli.commands.upload_progress import UploadMeter
from modelyard_cli.upload_plan import UploadFile, UploadPlan, UploadPlanError, plan_upload
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc import status_for

BIG = bytes(range(256)) * (CHUNK_BYTES // 256) + b"tail"  # a chunk and 4 bytes


def folder_of_files(root: Path) -> dict[str, bytes]:
    """a.png, b.png and big.bin (over one chunk) in `root`, c.png in a subfolder, hidden files around."""
    contents = {"a.png": b"A" * 10, "b.png": b"B" * 20, "big.bin": BIG, "c.png": b"C" * 30}
    (root / "sub").mkdir()
    for name, content in contents.items():
        (root / ("sub" if name == "c.png" else "") / name).write_bytes(content)
    (root / ".DS_Store").write_bytes(b"hidden")
    (root / ".cache").mkdir()
    (root / ".cache" / "d.png").write_bytes(b"hidden too")
    return contents


class TestStreaming:
    def test_a_folder_streams_start_then_each_file_header_and_its_chunks(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        contents = folder_of_files(tmp_path)
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--upload-id-prefix", "up-x")
        assert result.exit_code == 0, result.output
        (messages,) = dataset_svc.requests("UploadSamples")
        parts = [m.WhichOneof("part") for m in messages]
        assert parts == ["start", "file", "chunk", "file", "chunk", "file", "chunk", "chunk", "file", "chunk"]
        assert (messages[0].start.dataset_id, messages[0].start.upload_id) == ("ds-1", "up-x-1")
        assert messages[0].start.files == 4  # the server refuses a stream that brings fewer
        assert received_files(messages) == [
            ReceivedFile(name, len(contents[name]), contents[name])
            for name in ("a.png", "b.png", "big.bin", "c.png")
        ]
        assert max(len(m.chunk) for m in messages) == CHUNK_BYTES

    def test_batches_are_separate_calls_with_their_own_upload_ids(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        contents = folder_of_files(tmp_path)
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "3",
                              "--upload-id-prefix", "up-x")  # fmt: skip
        assert result.exit_code == 0, result.output
        calls = dataset_svc.requests("UploadSamples")
        assert [call[0].start.upload_id for call in calls] == ["up-x-1", "up-x-2"]
        assert [[f.filename for f in received_files(call)] for call in calls] == [
            ["a.png", "b.png", "big.bin"],
            ["c.png"],
        ]
        assert received_files(calls[1]) == [ReceivedFile("c.png", 30, contents["c.png"])]

    def test_without_a_prefix_each_upload_gets_a_fresh_one(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        (tmp_path / "a.png").write_bytes(b"a")
        for _ in range(2):
            assert dataset_yard("datasets", "upload", "ds-1", str(tmp_path / "a.png")).exit_code == 0
        first, second = (call[0].start.upload_id for call in dataset_svc.requests("UploadSamples"))
        assert first.startswith("up-")
        assert first.endswith("-1")
        assert first != second


class TestOutput:
    def test_without_a_terminal_one_line_per_batch_then_the_summary(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        folder_of_files(tmp_path)
        dataset_svc.duplicate_filenames = {"b.png"}
        dataset_svc.org_bytes_limit = 4 * 1024 * 1024
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "2")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            "batch 1/2 stored: 2 files, 1 added, 1 duplicates, 10 B new",
            "batch 2/2 stored: 2 files, 2 added, 0 duplicates, 1 MB new",
            "added 3 samples (1 MB), 1 duplicates (already in the dataset)",
            "organization storage 1 MB of 4.2 MB (25.0%)",
        ]

    def test_json_prints_every_stored_batch_and_keeps_progress_off_stdout(
        self, dataset_yard: Yard, tmp_path: Path
    ) -> None:
        folder_of_files(tmp_path)
        result = dataset_yard("--json", "datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "2",
                              "--upload-id-prefix", "up-x")  # fmt: skip
        document = json.loads(result.stdout)
        assert document["upload_id_prefix"] == "up-x"
        assert [b["added"] for b in document["batches"]] == ["2", "2"]
        assert "batch 2/2 stored" in result.stderr

    def test_on_a_terminal_a_bar_shows_bytes_and_files(self) -> None:
        screen = io.StringIO()
        console = Console(file=screen, force_terminal=True, width=120, highlight=False)
        response = datasets_pb2.UploadSamplesResponse(added=1)
        with UploadMeter(console, total_bytes=2048, total_files=2, batches=1) as meter:
            meter.sent(1024)
            meter.file_sent()
            console.print(meter._progress.get_renderable())  # the bar as drawn now
            meter.batch_stored(1, response)
        drawn = screen.getvalue()
        assert "1/2 files" in drawn
        assert "1.0/2.0 kB" in drawn
        assert "batch 1/1 stored" in drawn


class TestRefusals:
    def test_a_refused_batch_says_what_the_server_said_and_what_was_stored(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        folder_of_files(tmp_path)
        bad = InvalidArgument("files", "c.png is not an image the schema accepts")
        dataset_svc.refusals["UploadSamples#2"] = status_for(bad)
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "3",
                              "--upload-id-prefix", "up-x")  # fmt: skip
        assert result.exit_code == 2
        assert "batch 2/2 (upload id up-x-2) was refused" in result.stderr
        assert "error: INVALID_ARGUMENT: files: c.png is not an image the schema accepts" in result.stderr
        assert "1 earlier batch(es) of this upload were already stored" in result.stderr
        assert "added 3 samples" in result.stdout
        assert len(dataset_svc.requests("UploadSamples")) == 2

    def test_no_batch_follows_a_refused_one(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        folder_of_files(tmp_path)
        dataset_svc.refusals["UploadSamples#1"] = status_for(InvalidArgument("files", "a.png is empty"))
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "1")
        assert result.exit_code == 2
        assert len(dataset_svc.requests("UploadSamples")) == 1
        assert "0 earlier batch(es)" in result.stderr

    def test_two_files_with_one_base_name_are_refused_before_any_call(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        for folder in ("train", "extra"):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / "cat.png").write_bytes(folder.encode())
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path / "train"), str(tmp_path / "extra"))
        assert result.exit_code == 2
        assert "cat.png:" in result.stderr
        assert "Rename the files" in result.stderr
        assert dataset_svc.calls == []

    def test_a_file_that_cannot_be_read_while_sent_cancels_its_batch(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "a.png").write_bytes(b"a")
        gone = UploadFile(tmp_path / "gone.png", "gone.png", 5)  # deleted after the plan was made
        plan = UploadPlan([UploadFile(tmp_path / "a.png", "a.png", 1), gone])
        monkeypatch.setattr(dataset_upload, "plan_upload", lambda paths: plan)
        result = dataset_yard("datasets", "upload", "ds-1", str(tmp_path), "--batch-files", "1")
        assert result.exit_code == 2
        assert "batch 2/2 was cancelled; nothing of it was stored" in result.stderr
        assert f"error: cannot read {tmp_path / 'gone.png'} while sending it" in result.stderr
        assert "1 earlier batch(es)" in result.stderr
        assert [upload_id.endswith("-1") for upload_id in dataset_svc.accepted_upload_ids] == [True]


class TestPlan:
    def test_folders_are_walked_sorted_without_hidden_files(self, tmp_path: Path) -> None:
        folder_of_files(tmp_path)
        plan = plan_upload([tmp_path])
        assert [f.path.relative_to(tmp_path).as_posix() for f in plan.files] == [
            "a.png", "b.png", "big.bin", "sub/c.png"
        ]  # fmt: skip
        assert plan.total_bytes == 10 + 20 + len(BIG) + 30

    def test_symlinks_out_of_the_folder_are_skipped_and_those_inside_kept(self, tmp_path: Path) -> None:
        data, outside = tmp_path / "data", tmp_path / "outside"
        data.mkdir()
        outside.mkdir()
        (data / "a.png").write_bytes(b"a")
        (data / "sub").mkdir()
        (data / "sub" / "b.png").write_bytes(b"b")
        (outside / "secret.txt").write_bytes(b"s")
        os.symlink(outside / "secret.txt", data / "secret.txt")
        os.symlink(outside, data / "linked-folder")
        os.symlink(data / "sub" / "b.png", data / "b-again.png")
        plan = plan_upload([data])
        assert [f.filename for f in plan.files] == ["a.png", "b-again.png"]  # b.png is the same file
        assert plan.skipped_links == [data / "secret.txt"]

    def test_files_named_twice_are_sent_once(self, tmp_path: Path) -> None:
        (tmp_path / "a.png").write_bytes(b"a")
        assert [f.filename for f in plan_upload([tmp_path, tmp_path / "a.png"]).files] == ["a.png"]

    def test_batches_keep_the_order(self, tmp_path: Path) -> None:
        for name in "abcde":
            (tmp_path / name).write_bytes(name.encode())
        batches = plan_upload([tmp_path]).batches(2)
        assert [[f.filename for f in batch] for batch in batches] == [["a", "b"], ["c", "d"], ["e"]]

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (lambda root: (root / "empty.png").write_bytes(b""), "empty file"),
            (lambda root: None, "no files to upload"),
        ],
    )
    def test_empty_files_and_empty_folders_are_refused(
        self, tmp_path: Path, make: object, message: str
    ) -> None:
        make(tmp_path)  # type: ignore[operator]
        with pytest.raises(UploadPlanError, match=message):
            plan_upload([tmp_path])

    def test_a_missing_path_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(UploadPlanError, match="neither a file nor a folder"):
            plan_upload([tmp_path / "nope"])
