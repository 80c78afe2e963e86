"""Why a training run stopped on an error, in words a person can act on."""

from __future__ import annotations

# Defined with the artifact reader (edges raise it too); re-exported for the trainer's call sites.
from modelyard_inference.errors import ArtifactError as ArtifactError


class TrainingError(Exception):
    """Training cannot go on (diverged, out of memory, unusable checkpoint …); `str()` says why."""

    code = "training_failed"


class TrainingDataError(TrainingError):
    """The dataset cannot be trained on; the message names the file, line or column at fault."""

    code = "bad_training_data"


class DatasetVersionError(TrainingDataError):
    """A published dataset version cannot be fetched or read back intact; the message names the
    version or sample at fault and whether a retry can help."""

    code = "bad_dataset_version"


class IncompatibleBaseError(TrainingError):
    """A base artifact cannot start this run (fine-tuning); the message names every difference."""

    code = "incompatible_base"
