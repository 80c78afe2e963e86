"""Idempotent consumers: projections applied exactly once from at-least-once Kafka."""

from modelyard_events.consumer.projection import Projection
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic

__all__ = ["Projection", "ProjectionRunner", "SourceTopic"]
