"""Rendering of datasets, samples, versions and uploads, checked on hand-built messages."""

from __future__ import annotations

import io

import pytest
from dataset_fakes import dataset, sample, version
from rich.console import Console, RenderableType

from modelyard.v1 import datasets_pb2
from modelyard_cli.render.datasets import datasets_table, readiness_view, upload_summary, usage_text
from modelyard_cli.render.samples import annotation_text, sample_details, samples_table, states_text
from modelyard_cli.render.values import format_bytes


def text_of(renderable: RenderableType) -> str:
    """What a wide terminal would show, without colors."""
    console = Console(width=220, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def row_of(text: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is `first_cell`."""
    rows = [
        [c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")
    ]
    return next(row for row in rows if row[0] == first_cell)


class TestValues:
    @pytest.mark.parametrize(
        ("size", "text"), [(0, "0 B"), (999, "999 B"), (1536, "1.5 kB"), (10 * 10**9, "10 GB")]
    )
    def test_bytes_in_binary_units(self, size: int, text: str) -> None:
        assert format_bytes(size) == text

    def test_boxes_are_listed_with_their_class_and_place(self) -> None:
        box = datasets_pb2.BoundingBox(class_name="cat", x=0.1, y=0.2, width=0.3, height=0.4)
        annotation = datasets_pb2.Annotation(boxes=[box, box])
        assert annotation_text(annotation) == "cat at (0.10, 0.20) 0.30×0.40; cat at (0.10, 0.20) 0.30×0.40"
        assert annotation_text(None) == "-"

    def test_usage_without_a_limit_says_so(self) -> None:
        assert usage_text(datasets_pb2.UploadSamplesResponse(org_bytes_used=2048)) == "2 kB (no limit)"

    def test_states_are_counted_in_enum_order(self) -> None:
        verified = sample("s-2", state=datasets_pb2.SAMPLE_STATE_VERIFIED)
        assert states_text([verified, sample("s-1"), sample("s-3")]) == "labeled 2 · verified 1"


class TestTables:
    def test_dataset_rows_show_schema_size_and_version(self) -> None:
        text = text_of(datasets_table([dataset("ds-7", latest_version=3)]))
        assert row_of(text, "ds-7") == ["ds-7", "pets", "acme", "vision", "dev", "classification [cat, dog]",
                                        "10", "4.1 kB", "3"]  # fmt: skip

    def test_sample_rows_show_state_labels_and_consensus(self) -> None:
        text = text_of(samples_table([sample("s-1", agreement=0.75)]))
        assert row_of(text, "s-1") == [
            "s-1",
            "s-1.png",
            "100 B",
            "image/png",
            "labeled",
            "2",
            "cat",
            "75.0%",
            "3",
        ]

    def test_a_sample_shows_each_annotators_label(self) -> None:
        text = text_of(sample_details(sample("s-1")))
        assert row_of(text, "bob")[:2] == ["bob", "cat"]
        assert "labeled (version 3)" in text

    def test_readiness_marks_each_check(self) -> None:
        text = text_of(readiness_view(version(ready=False).readiness))
        assert row_of(text, "✓")[1] == "label_agreement"
        assert row_of(text, "✗")[1] == "samples_per_class"
        assert row_of(text, "dog") == ["dog", "3"]
        assert text.strip().endswith("ds-1 version 2 is NOT ready")

    def test_an_upload_without_stored_batches_adds_nothing(self) -> None:
        assert upload_summary([]) == ["added 0 samples (0 B), 0 duplicates (already in the dataset)"]
