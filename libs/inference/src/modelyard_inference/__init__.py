"""Loading a modelyard.model/1 artifact and running it: shared by trainers (evaluation) and edges (serving).

No training code here: an edge box installs this library, never the trainer.
"""

from modelyard_inference.artifact import (
    ARTIFACT_FORMAT,
    ARTIFACT_NAME,
    ArtifactConfig,
    Predictions,
    artifact_payload,
    load_artifact,
    predict,
    prepared_inputs,
    probe_input,
    raw_batch,
)
from modelyard_inference.errors import ArtifactError, ProbeInputError
from modelyard_inference.labels import ClassLabel
from modelyard_inference.latency import Latency, measure_latency, summarize_latency
from modelyard_inference.networks import Mlp, SmallCnn, build_model
from modelyard_inference.probes import probe_inputs, read_probe_inputs
from modelyard_inference.scaling import ImageScaling, TabularScaling
from modelyard_inference.serving import LoadedModel, ProbeRun, load_model, measure_on_probes

__all__ = [
    "ARTIFACT_FORMAT",
    "ARTIFACT_NAME",
    "ArtifactConfig",
    "ArtifactError",
    "ClassLabel",
    "ImageScaling",
    "Latency",
    "LoadedModel",
    "Mlp",
    "Predictions",
    "ProbeInputError",
    "ProbeRun",
    "SmallCnn",
    "TabularScaling",
    "artifact_payload",
    "build_model",
    "load_artifact",
    "load_model",
    "measure_latency",
    "measure_on_probes",
    "predict",
    "prepared_inputs",
    "probe_input",
    "probe_inputs",
    "raw_batch",
    "read_probe_inputs",
    "summarize_latency",
]
