"""`yard datasets label` against the fake dataset-svc, and the reading of label sheets and boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_fakes import FakeDatasetSvc, sample
from yard_runner import Yard

from modelyard.v1 import datasets_pb2
from modelyard_cli.label_input import LabelInputError, parse_boxes, read_label_sheet, resolve
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc import status_for


def sheet(tmp_path: Path, text: str) -> str:
    """A CSV file holding `text`; its path as an argument."""
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return str(path)


def labels_sent(dataset_svc: FakeDatasetSvc) -> list[list[tuple[str, str]]]:
    """(sample id, class) of each LabelSamples call, call by call."""
    return [
        [(label.sample_id, label.annotation.class_name) for label in request.labels]
        for request in dataset_svc.requests("LabelSamples")
    ]


class TestSheet:
    def test_filenames_are_mapped_to_ids_through_every_page_of_samples(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        dataset_svc.samples = [sample(f"s-{n}", f"img{n}.png") for n in range(5)]
        dataset_svc.max_page_size = 2
        labels = sheet(tmp_path, "filename,class\nimg4.png,dog\nimg0.png,cat\n")
        result = dataset_yard("datasets", "label", "ds-1", "--labels", labels)
        assert result.exit_code == 0, result.output
        assert [r.page_token for r in dataset_svc.requests("ListSamples")] == ["", "2", "4"]
        assert all(r.dataset_id == "ds-1" and not r.states for r in dataset_svc.requests("ListSamples"))
        assert labels_sent(dataset_svc) == [[("s-4", "dog"), ("s-0", "cat")]]
        assert dataset_svc.requests("LabelSamples")[0].dataset_id == "ds-1"

    def test_labels_go_in_batches(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        labels = sheet(tmp_path, "sample_id,class\n" + "".join(f"s-{n},cat\n" for n in range(5)))
        result = dataset_yard("datasets", "label", "ds-1", "--labels", labels, "--batch", "2")
        assert result.exit_code == 0, result.output
        assert [len(call) for call in labels_sent(dataset_svc)] == [2, 2, 1]
        assert dataset_svc.requests("ListSamples") == []  # sample ids need no mapping
        assert result.stdout.strip() == "labeled 5 sample(s) of ds-1; states now: labeled 5"

    def test_unknown_filenames_are_listed_and_nothing_is_labeled(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        dataset_svc.samples = [sample("s-1", "img1.png")]
        labels = sheet(tmp_path, "filename,class\nimg1.png,cat\nnope.png,dog\nmissing.png,cat\n")
        result = dataset_yard("datasets", "label", "ds-1", "--labels", labels)
        assert result.exit_code == 2
        assert "2 filename(s) are not samples of the dataset: nope.png, missing.png" in result.stderr
        assert dataset_svc.requests("LabelSamples") == []

    def test_a_refused_batch_says_how_many_labels_were_recorded_before(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, tmp_path: Path
    ) -> None:
        labels = sheet(tmp_path, "sample_id,class\ns-1,cat\ns-2,cat\ns-3,bird\n")
        dataset_svc.refusals["LabelSamples#2"] = status_for(
            InvalidArgument("class", "bird is not a class of ds-1")
        )
        result = dataset_yard("datasets", "label", "ds-1", "--labels", labels, "--batch", "2")
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "error: INVALID_ARGUMENT: class: bird is not a class of ds-1",
            "  class: bird is not a class of ds-1",
            "2 label(s) of earlier batches were recorded",
        ]


class TestOneSample:
    def test_a_class(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        result = dataset_yard("datasets", "label", "ds-1", "--sample", "s-1", "--class", "cat", "--json")
        assert result.exit_code == 0, result.output
        assert labels_sent(dataset_svc) == [[("s-1", "cat")]]
        assert json.loads(result.stdout)["labeled"] == 1

    def test_boxes(self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc) -> None:
        boxes = '[{"class_name": "cat", "x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}]'
        result = dataset_yard("datasets", "label", "ds-1", "--sample", "s-1", "--boxes-json", boxes)
        assert result.exit_code == 0, result.output
        (label,) = dataset_svc.requests("LabelSamples")[0].labels
        assert label.annotation.boxes[0] == datasets_pb2.BoundingBox(
            class_name="cat", x=0.1, y=0.2, width=0.3, height=0.4
        )

    @pytest.mark.parametrize(
        "args",
        [
            ("--sample", "s-1"),
            ("--sample", "s-1", "--class", "cat", "--boxes-json", "[]"),
            ("--class", "cat"),
            ("--labels", "x.csv", "--sample", "s-1", "--class", "cat"),
        ],
    )
    def test_one_way_of_labeling_at_a_time(
        self, dataset_yard: Yard, dataset_svc: FakeDatasetSvc, args: tuple[str, ...]
    ) -> None:
        result = dataset_yard("datasets", "label", "ds-1", *args)
        assert result.exit_code == 2
        assert dataset_svc.calls == []


class TestLabelInput:
    def test_a_sheet_needs_a_key_and_a_class_column(self, tmp_path: Path) -> None:
        with pytest.raises(LabelInputError, match="found: file, label"):
            read_label_sheet(Path(sheet(tmp_path, "file,label\na.png,cat\n")))

    def test_sample_id_wins_over_filename(self, tmp_path: Path) -> None:
        labels = read_label_sheet(Path(sheet(tmp_path, "Filename, Sample_ID ,Class\na.png,s-1,cat\n")))
        assert (labels.key_column, labels.rows[0].key, labels.rows[0].class_name) == (
            "sample_id",
            "s-1",
            "cat",
        )

    def test_an_empty_cell_names_its_line(self, tmp_path: Path) -> None:
        with pytest.raises(LabelInputError, match="line 3"):
            read_label_sheet(Path(sheet(tmp_path, "filename,class\na.png,cat\nb.png,\n")))

    def test_a_sample_labeled_twice_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(LabelInputError, match=r"a.png \(lines 2, 4\)"):
            read_label_sheet(Path(sheet(tmp_path, "filename,class\na.png,cat\nb.png,dog\na.png,dog\n")))

    def test_a_filename_of_several_samples_is_refused(self, tmp_path: Path) -> None:
        labels = read_label_sheet(Path(sheet(tmp_path, "filename,class\na.png,cat\n")))
        with pytest.raises(LabelInputError, match=r"a.png \(s-1, s-2\).*sample_id"):
            resolve(labels, {"a.png": ["s-1", "s-2"]})

    def test_only_a_few_unknown_names_are_listed(self, tmp_path: Path) -> None:
        rows = "".join(f"f{n}.png,cat\n" for n in range(8))
        labels = read_label_sheet(Path(sheet(tmp_path, "filename,class\n" + rows)))
        with pytest.raises(LabelInputError, match=r"f4\.png and 3 more"):
            resolve(labels, {})

    @pytest.mark.parametrize(
        "text",
        [
            "not json",
            "[]",
            '[{"class_name": "cat"}]',
            '[{"class_name": 1, "x": 0, "y": 0, "width": 1, "height": 1}]',
        ],
    )
    def test_boxes_must_be_a_list_of_complete_boxes(self, text: str) -> None:
        with pytest.raises(LabelInputError):
            parse_boxes(text)
