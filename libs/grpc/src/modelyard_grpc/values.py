"""Protobuf values every servicer converts the same way."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from modelyard.v1 import datasets_pb2

# DatasetService's label tasks ⇄ the names the events use (LabelSchemaData.task).
LABEL_TASKS: dict[datasets_pb2.LabelTask, str] = {
    datasets_pb2.LABEL_TASK_CLASSIFICATION: "classification",
    datasets_pb2.LABEL_TASK_DETECTION: "detection",
    datasets_pb2.LABEL_TASK_NONE: "none",
}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime as a protobuf Timestamp."""
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message
