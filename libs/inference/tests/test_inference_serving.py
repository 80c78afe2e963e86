"""What an edge does: load an artifact (timed), then run probes one at a time (timed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from inference_samples import ANIMALS, image_config, tabular_config, write_artifact

from modelyard_inference import ArtifactError, load_model, measure_on_probes, probe_inputs, summarize_latency


def test_load_model_times_the_load_and_exposes_the_labels(tmp_path: Path) -> None:
    loaded = load_model(write_artifact(tmp_path / "model.pt", tabular_config()))

    assert loaded.load_time_ms > 0
    assert loaded.device == "cpu"
    assert loaded.class_labels == ANIMALS
    assert loaded.is_classifier
    assert loaded.predict(probe_inputs(loaded.config, 2)).outputs[0] in ANIMALS


def test_probe_run_labels_match_a_batch_prediction(tmp_path: Path) -> None:
    loaded = load_model(write_artifact(tmp_path / "model.pt", image_config()))
    probes = probe_inputs(loaded.config, 12, seed=4)

    run = measure_on_probes(loaded, probes)

    assert run.samples == 12
    assert run.labels == loaded.predict(probes).outputs
    assert 0 < run.latency_p50_ms <= run.latency_p95_ms


def test_a_regressor_probe_run_reports_values(tmp_path: Path) -> None:
    loaded = load_model(write_artifact(tmp_path / "model.pt", tabular_config(None)))
    probes = probe_inputs(loaded.config, 3)

    run = measure_on_probes(loaded, probes)

    assert loaded.class_labels is None
    assert run.labels == pytest.approx(loaded.predict(probes).outputs)
    assert all(isinstance(value, float) for value in run.labels)


def test_no_probes_is_refused(tmp_path: Path) -> None:
    loaded = load_model(write_artifact(tmp_path / "model.pt", tabular_config()))

    with pytest.raises(ValueError, match="no probe inputs"):
        measure_on_probes(loaded, np.empty((0, 3)))


def test_a_missing_artifact_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"missing\.pt"):
        load_model(tmp_path / "missing.pt")


def test_latency_summary_is_median_and_95th_percentile() -> None:
    latency = summarize_latency([float(ms) for ms in range(1, 101)])

    assert latency.p50_ms == pytest.approx(50.5)
    assert latency.p95_ms == pytest.approx(95.05)
    with pytest.raises(ValueError, match="no timings"):
        summarize_latency([])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_model_loaded_on_cuda_predicts_what_the_cpu_copy_does(tmp_path: Path) -> None:
    path = write_artifact(tmp_path / "model.pt", image_config())
    on_cpu, on_cuda = load_model(path), load_model(path, device="cuda")
    probes = probe_inputs(on_cpu.config, 16, seed=5)

    run = measure_on_probes(on_cuda, probes)

    assert next(on_cuda.model.parameters()).is_cuda
    assert run.labels == on_cpu.predict(probes).outputs
    np.testing.assert_allclose(
        np.asarray(on_cuda.predict(probes).probabilities),
        np.asarray(on_cpu.predict(probes).probabilities),
        atol=1e-4,
    )
