"""Probe inputs: generated deterministically from the config, or read from an operator's file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from inference_samples import FEATURES, IMAGE_SHAPE, image_config, tabular_config

from modelyard_inference import ProbeInputError, probe_inputs, read_probe_inputs


def test_generated_probes_repeat_for_a_seed_and_differ_across_seeds() -> None:
    config = tabular_config()

    first, again, other = (probe_inputs(config, 5, seed) for seed in (7, 7, 8))

    assert first.shape == (5, len(FEATURES))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_generated_tabular_probes_follow_the_training_statistics() -> None:
    probes = probe_inputs(tabular_config(), 2000, seed=1)

    np.testing.assert_allclose(probes.mean(axis=0), [170.0, 70.0, 30.0], atol=1.5)
    np.testing.assert_allclose(probes.std(axis=0), [10.0, 15.0, 8.0], rtol=0.1)


def test_generated_image_probes_stay_in_the_training_pixel_range() -> None:
    probes = probe_inputs(image_config(), 50, seed=2)

    assert probes.shape == (50, *IMAGE_SHAPE)
    assert probes.min() >= 0.0
    assert probes.max() <= 255.0
    assert probes.std() > 10  # varied inputs, not one constant image


def test_a_probe_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        probe_inputs(tabular_config(), 0)


def test_npy_images_without_the_channel_axis_are_read_as_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "probes.npy"
    np.save(path, np.arange(3 * 25, dtype=np.uint8).reshape(3, 5, 5))

    probes = read_probe_inputs(path, image_config())

    assert probes.shape == (3, *IMAGE_SHAPE)
    assert probes.dtype == np.float64
    assert probes[1, 0, 0, 0] == 25


def test_json_lines_rows_are_put_in_feature_order(tmp_path: Path) -> None:
    path = tmp_path / "probes.jsonl"
    rows = [{"age": 3, "weight": 2, "height": 1, "name": "ignored"}, {"height": 4, "weight": 5, "age": 6}]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")

    probes = read_probe_inputs(path, tabular_config())

    np.testing.assert_array_equal(probes, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("probes.jsonl", '{"height": 1, "weight": 2}\n', "lack feature.* age"),
        ("probes.jsonl", '{"height": 1, "weight": 2, "age": "old"}\n', "could not convert"),
        ("probes.jsonl", "[1, 2, 3]\n", "line 1: expected an object"),
        ("probes.jsonl", "{oops\n", "line 1: not JSON"),
        ("probes.jsonl", "", "rows of 3 numbers"),
        ("probes.csv", "height,weight,age\n1,2,3\n", "must be a .npy, .jsonl, .ndjson file"),
    ],
)
def test_unusable_tabular_probe_files_say_why(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(ProbeInputError, match=message):
        read_probe_inputs(path, tabular_config())


def test_unusable_image_probe_files_say_why(tmp_path: Path) -> None:
    wrong_shape, text, objects, infinite, lines = (
        tmp_path / name for name in ("shape.npy", "text.npy", "objects.npy", "inf.npy", "rows.jsonl")
    )
    np.save(wrong_shape, np.zeros((2, 4, 4)))
    np.save(text, np.array(["a", "b"]))
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(infinite, np.full((1, 5, 5), np.inf))
    lines.write_text('{"x": 1}\n')
    config = image_config()

    with pytest.raises(ProbeInputError, match=r"images must be \(1, 5, 5\)"):
        read_probe_inputs(wrong_shape, config)
    with pytest.raises(ProbeInputError, match="must be numbers"):
        read_probe_inputs(text, config)
    with pytest.raises(ProbeInputError, match="allow_pickle=False"):  # refused, never unpickled
        read_probe_inputs(objects, config)
    with pytest.raises(ProbeInputError, match="not finite"):
        read_probe_inputs(infinite, config)
    with pytest.raises(ProbeInputError, match="need a tabular model"):
        read_probe_inputs(lines, config)
    with pytest.raises(ProbeInputError, match="No such file"):
        read_probe_inputs(tmp_path / "missing.npy", config)
