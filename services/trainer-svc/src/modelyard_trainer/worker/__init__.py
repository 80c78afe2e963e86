"""The `work` mode of trainer-svc: dispatches from Kafka, runs in threads, reports to the trainer store."""

from modelyard_trainer.worker.process import run_worker

__all__ = ["run_worker"]
