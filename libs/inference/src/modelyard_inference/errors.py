"""Why an artifact or an input cannot be used, in words a person can act on."""

from __future__ import annotations


class ArtifactError(ValueError):
    """A file is not a Modelyard model artifact, or it is damaged; `str()` names the file and why."""

    code = "bad_artifact"


class ProbeInputError(ValueError):
    """Probe inputs (a file or an array) do not fit the model's inputs; `str()` says what was expected."""

    code = "bad_probe_inputs"
