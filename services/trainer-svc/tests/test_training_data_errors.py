"""Unusable datasets are refused with a message that names what is wrong and where."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from trainer_samples import RecordingObserver, SpecFactory, write_csv, write_jsonl

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_trainer.training import TrainingControl, TrainingDataError, TrainingError, run_training
from modelyard_trainer.training.data import load_training_data

GOOD_ROWS = [[1.0, 2.0, "a"], [2.0, 1.0, "b"], [3.0, 0.5, "a"], [0.5, 3.0, "b"]]


def _tabular(uri: str, **values: object) -> None:
    hyperparameters = validate_hyperparameters("tabular_classifier", {"target_column": "label", **values})
    load_training_data("tabular_classifier", uri, hyperparameters)


def _images(path: Path) -> None:
    load_training_data("image_classifier", path.as_uri(), validate_hyperparameters("image_classifier", {}))


def test_a_missing_target_column_is_named_with_the_columns_there_are(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "x2", "kind"], GOOD_ROWS)

    with pytest.raises(
        TrainingDataError, match=r"data.csv: no target column 'label'; columns are x1, x2, kind"
    ):
        _tabular(data.as_uri())


def test_a_misspelled_target_in_a_huge_table_gives_a_short_message_listing_some_columns(
    tmp_path: Path,
) -> None:
    # Issue 11: 120,000 columns listed in full made a 1.56 MB failure reason that no relay could publish.
    header = [f"feature_{i:06d}" for i in range(120_000)]
    data = write_csv(tmp_path / "wide.csv", header, [[1.0] * 120_000, [2.0] * 120_000])

    with pytest.raises(TrainingDataError) as refused:
        _tabular(data.as_uri(), target_column="labl")

    message = str(refused.value)
    assert message.startswith("wide.csv: no target column 'labl'; columns are feature_000000, feature_000001")
    assert message.endswith("feature_000019 and 119,980 more")
    assert len(message) < 1000


def test_a_missing_feature_column_is_named(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "x2", "label"], GOOD_ROWS)

    with pytest.raises(TrainingDataError, match=r"no feature column 'x3'"):
        _tabular(data.as_uri(), feature_columns=["x1", "x3"])


def test_a_non_numeric_csv_cell_is_named_with_its_line_and_column(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS[:2], [3.0, "abc", "a"], GOOD_ROWS[3]]
    data = write_csv(tmp_path / "data.csv", ["x1", "x2", "label"], rows)

    with pytest.raises(TrainingDataError, match=r"data.csv line 4: column 'x2' is 'abc', not a number"):
        _tabular(data.as_uri())


def test_an_empty_csv_cell_is_named(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "x2", "label"], [*GOOD_ROWS[:3], ["", 1.0, "b"]])

    with pytest.raises(TrainingDataError, match=r"data.csv line 5: column 'x1' is empty"):
        _tabular(data.as_uri())


def test_a_jsonl_value_that_is_not_a_number_is_named_with_its_line(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [{"x1": 1, "x2": 2, "label": "a"}, {"x1": 2, "x2": None, "label": "b"}]
    data = write_jsonl(tmp_path / "data.jsonl", records)

    with pytest.raises(TrainingDataError, match=r"data.jsonl line 2: column 'x2' is null, not a number"):
        _tabular(data.as_uri())


def test_a_jsonl_row_without_a_column_is_named(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", [{"x1": 1, "label": "a"}, {"label": "b"}])

    with pytest.raises(TrainingDataError, match=r"data.jsonl line 2: no value for column 'x1'"):
        _tabular(data.as_uri())


def test_a_broken_jsonl_line_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"x1": 1, "label": "a"}\n{"x1": 2, "label": \n')

    with pytest.raises(TrainingDataError, match=r"data.jsonl line 2 is not valid JSON"):
        _tabular(data.as_uri())


@pytest.mark.parametrize("name", ["data.csv", "data.jsonl", "digits.npz"])
def test_an_empty_file_is_refused(tmp_path: Path, name: str) -> None:
    data = tmp_path / name
    data.touch()

    load = _images if name.endswith(".npz") else lambda path: _tabular(path.as_uri())

    with pytest.raises(TrainingDataError, match=rf"{name} is empty"):
        load(data)


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "label"], [])

    with pytest.raises(TrainingDataError, match=r"data.csv has no data rows"):
        _tabular(data.as_uri())


def test_a_single_class_cannot_train_a_classifier(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "label"], [[1, "a"], [2, "a"], [3, "a"]])

    with pytest.raises(TrainingDataError, match=r"target column 'label' has only one class"):
        _tabular(data.as_uri())


def test_images_and_labels_of_different_counts_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "digits.npz"
    np.savez(data, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(9) % 2)

    with pytest.raises(TrainingDataError, match=r"digits.npz has 10 images but 9 labels"):
        _images(data)


def test_an_archive_without_labels_says_what_it_holds(tmp_path: Path) -> None:
    data = tmp_path / "digits.npz"
    np.savez(data, images=np.zeros((10, 8, 8), np.uint8), targets=np.arange(10))

    with pytest.raises(TrainingDataError, match=r"has no labels array \(it holds images, targets\)"):
        _images(data)


def test_images_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "digits.npz"
    np.savez(data, images=np.full((4, 2, 2), "x"), labels=np.arange(4) % 2)

    with pytest.raises(TrainingDataError, match=r"images must be numeric"):
        _images(data)


def test_an_unknown_uri_scheme_is_refused() -> None:
    with pytest.raises(TrainingDataError, match=r"unknown dataset URI scheme 's3' in 's3://bucket/data.csv'"):
        _tabular("s3://bucket/data.csv")


def test_a_uri_without_scheme_is_refused() -> None:
    with pytest.raises(TrainingDataError, match=r"has no scheme; expected file:///absolute/path"):
        _tabular("/data/data.csv")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match=f"dataset file not found: {tmp_path}/nowhere.csv"):
        _tabular((tmp_path / "nowhere.csv").as_uri())


def test_a_tabular_file_of_another_format_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data.parquet"
    data.write_bytes(b"PAR1")

    with pytest.raises(
        TrainingDataError, match=r"tabular datasets must be .csv, .jsonl, .ndjson files, not .parquet"
    ):
        _tabular(data.as_uri())


def test_run_training_raises_the_data_error_before_any_report(
    tmp_path: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    data = write_csv(tmp_path / "data.csv", ["x1", "label"], [[1, "a"], ["oops", "b"]])
    spec = make_spec("tabular_classifier", data, target_column="label")

    with pytest.raises(TrainingDataError, match=r"line 3: column 'x1' is 'oops'"):
        run_training(spec, observer, TrainingControl())
    assert observer.starts == []
    assert [phase for phase, _ in observer.phases] == ["loading_data"]  # where it stopped


def test_hyperparameters_of_another_family_are_refused(digits_npz: Path, make_spec: SpecFactory) -> None:
    spec = make_spec("image_classifier", digits_npz)
    wrong = type(spec)(**{**spec.__dict__, "family": "tabular_regressor"})

    with pytest.raises(
        TrainingError, match=r"'tabular_regressor' cannot be trained with ImageClassifierHyperparameters"
    ):
        run_training(wrong, RecordingObserver(), TrainingControl())


def test_a_binary_file_is_not_taken_for_text(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(b"x1,label\n\xff\xfe,1\n")

    with pytest.raises(TrainingDataError, match=r"data.csv is not UTF-8 text"):
        _tabular(data.as_uri())
