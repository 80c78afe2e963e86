"""Input scaling: defined in modelyard_inference.scaling (edges scale inputs with the same numbers),
re-exported here for the trainer's call sites."""

from modelyard_inference.scaling import ImageScaling as ImageScaling
from modelyard_inference.scaling import TabularScaling as TabularScaling
