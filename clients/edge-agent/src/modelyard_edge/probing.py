"""Loading versions and running the health gate's measurements (PyTorch work: call it in a thread).

The gate loads the new version and, freshly, the one it replaces (so both load times are measured
alike, with the file in the page cache), runs the same probe inputs through both one sample at a
time, and hands the figures to the pure `judge_health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt

from modelyard_edge.health import Figures, HealthVerdict, Limits, agreement_of, judge_health
from modelyard_edge.versions import InstalledVersion
from modelyard_inference import (
    LoadedModel,
    ProbeInputError,
    ProbeRun,
    load_model,
    measure_on_probes,
    probe_inputs,
    read_probe_inputs,
)

PROBE_COUNT = 32
PROBE_SEED = 0


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A version held in memory to serve its module's requests."""

    ai_module: str
    version_id: str
    semantic_version: str
    loaded: LoadedModel

    def predict(self, inputs: Any) -> list[Any]:
        """One output per input (class label or value); inputs as modelyard_inference accepts them."""
        return list(self.loaded.predict(inputs).outputs)


def load_version(installed: InstalledVersion, device: str = "cpu") -> ServedModel:
    """Load a verified version with PyTorch (weights only); ArtifactError when it is not loadable."""
    manifest = installed.manifest
    loaded = load_model(installed.model_file, device)
    return ServedModel(manifest.ai_module, manifest.version_id, manifest.semantic_version, loaded)


def probes_for(loaded: LoadedModel, probe_file: Path | None) -> npt.NDArray[Any]:
    """The agent's probe inputs for this model: from the operator's file, else generated from the
    model's config (deterministic, so every agent probes a version with the same inputs)."""
    if probe_file is not None:
        return read_probe_inputs(probe_file, loaded.config)
    return probe_inputs(loaded.config, PROBE_COUNT, PROBE_SEED)


def health_gate(
    new: ServedModel,
    old: InstalledVersion | None,
    probe_file: Path | None,
    limits: Limits,
    device: str = "cpu",
) -> HealthVerdict:
    """Measure `new` and (loaded again) `old` on the same probes and judge them; without `old` the new
    model passes once it has loaded and run. Raises ArtifactError / ProbeInputError when the new model
    cannot run its probes (a failure of the new version, never of the running one)."""
    probes = probes_for(new.loaded, probe_file)
    new_run = measure_on_probes(new.loaded, probes)
    new_figures = Figures(new.version_id, new.loaded.load_time_ms, new_run.latency_p95_ms)
    if old is None:
        return judge_health(new_figures, None, None, 0, limits, probes=len(probes))
    old_loaded = load_model(old.model_file, device)
    old_run, same_probes = _run_old(old_loaded, probes, probe_file)
    old_figures = Figures(old.manifest.version_id, old_loaded.load_time_ms, old_run.latency_p95_ms)
    agreement, compared = (None, 0)
    if same_probes:
        agreement, compared = agreement_of(
            new_run.labels, old_run.labels, new.loaded.class_labels, old_loaded.class_labels
        )
    return judge_health(new_figures, old_figures, agreement, compared, limits, probes=len(probes))


def _run_old(old: LoadedModel, probes: npt.NDArray[Any], probe_file: Path | None) -> tuple[ProbeRun, bool]:
    """The old model on the new model's probes; on its own probes (no agreement) when its inputs differ."""
    try:
        return measure_on_probes(old, probes), True
    except (ValueError, RuntimeError):  # another input shape: the models cannot be compared sample by sample
        try:
            return measure_on_probes(old, probes_for(old, probe_file)), False
        except ProbeInputError:
            return measure_on_probes(old, probe_inputs(old.config, PROBE_COUNT, PROBE_SEED)), False
