"""Idempotent consumers: projections applied exactly once from at-least-once Kafka."""

from modelyard_events.consumer.projection import BatchProjection, Decoded, Projection
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic

__all__ = ["BatchProjection", "Decoded", "Projection", "ProjectionRunner", "SourceTopic"]
