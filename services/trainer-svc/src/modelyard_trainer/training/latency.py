"""Per-sample inference latency: defined in modelyard_inference.latency (edges time probes the same way),
re-exported here for the trainer's call sites."""

from modelyard_inference.latency import Latency as Latency
from modelyard_inference.latency import measure_latency as measure_latency
