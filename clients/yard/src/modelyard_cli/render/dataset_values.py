"""Names of dataset-svc's enums as people type and read them: `dev`, `classification`, `labeled`."""

from __future__ import annotations

from enum import StrEnum

from modelyard.v1 import datasets_pb2


class EnvironmentName(StrEnum):
    """The environments a dataset belongs to (`--env`)."""

    dev = "dev"
    staging = "staging"
    production = "production"


class TaskName(StrEnum):
    """The label tasks a dataset's schema names (`--task`)."""

    classification = "classification"
    detection = "detection"
    none = "none"


class SampleStateName(StrEnum):
    """The review states of a sample (`--samples`)."""

    unlabeled = "unlabeled"
    labeled = "labeled"
    verified = "verified"
    rejected = "rejected"


def environment_value(name: EnvironmentName) -> str:
    """`dev` → "ENVIRONMENT_DEV" (protobuf takes enum values by name)."""
    return f"ENVIRONMENT_{name.value.upper()}"


def task_value(name: TaskName) -> str:
    """`detection` → "LABEL_TASK_DETECTION"."""
    return f"LABEL_TASK_{name.value.upper()}"


def sample_state_value(name: SampleStateName) -> str:
    """`labeled` → "SAMPLE_STATE_LABELED"."""
    return f"SAMPLE_STATE_{name.value.upper()}"


def environment_name(value: int) -> str:
    """ENVIRONMENT_STAGING → `staging`."""
    return _short(datasets_pb2.Environment.Name(value), "ENVIRONMENT_")


def task_name(value: int) -> str:
    """LABEL_TASK_CLASSIFICATION → `classification`."""
    return _short(datasets_pb2.LabelTask.Name(value), "LABEL_TASK_")


def sample_state_name(value: int) -> str:
    """SAMPLE_STATE_VERIFIED → `verified`."""
    return _short(datasets_pb2.SampleState.Name(value), "SAMPLE_STATE_")


def _short(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower()
