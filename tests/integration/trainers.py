"""Trainer workers a test starts, stopped (and seen gone by job-svc) when the test ends."""

from __future__ import annotations

from subprocess import Popen

from modelyard.v1 import jobs_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from tests.integration.job_client import JobClient


class Trainers:
    """Starts workers by id; `stop_all` stops them and waits until job-svc no longer counts them alive."""

    def __init__(self, services: Platform, client: JobClient) -> None:
        self._services, self._client = services, client
        self.started: dict[str, Popen[bytes]] = {}

    async def start(self, trainer_id: str, slots: int = 1) -> Popen[bytes]:
        """A worker heartbeating to job-svc (returns once job-svc lists it alive)."""
        self.started[trainer_id] = self._services.spawn_trainer(trainer_id, slots)
        await self._services.trainer_alive(trainer_id)
        return self.started[trainer_id]

    def log(self, trainer_id: str) -> str:
        """The worker's log so far."""
        return self._services.log_of(f"trainer-{trainer_id}").read_text(errors="replace")

    async def stop_all(self) -> None:
        """Stop every worker this test started; wait until job-svc sees none of them alive."""
        for trainer_id in self.started:
            if f"trainer-{trainer_id}" in self._services.processes:
                self._services.stop(f"trainer-{trainer_id}")
        await eventually(self._none_alive, 30, "job-svc to notice the stopped trainers")

    async def _none_alive(self) -> bool:
        listed = await self._client.queries.ListTrainers(jobs_pb2.ListTrainersRequest())
        return not any(t.alive for t in listed.trainers)
