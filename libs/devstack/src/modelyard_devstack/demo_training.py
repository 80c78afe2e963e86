"""`make demo`, part 4: job-svc, trainer-svc and a trainer worker train the digits for real.

The services run as their own processes (the launcher in `platform`), and the walk drives them
the way a user would: with the `yard` CLI, whose `jobs submit --watch` shows a live progress bar
and the loss of each epoch, and ends with the measured validation accuracy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.stack import Infra
from modelyard_grpc import channel

_ORG = "demo-org"
_EPOCHS = 5


def walk_training(servers: Infra) -> None:
    """Start the services and a trainer, submit a digits job with yard and watch it finish."""
    with tempfile.TemporaryDirectory(prefix="modelyard-demo-") as tmp:
        workdir = Path(tmp)
        dataset = _export_digits(workdir / "data" / "digits.npz")
        started = time.monotonic()
        with platform(servers, workdir / "platform", lease_ttl_s=10.0) as running:
            print(
                f"\n4. Training: job-svc on {running.job_target}, trainer-svc on {running.trainer_target} "
                f"(ready in {time.monotonic() - started:.1f} s)"
            )
            running.spawn_trainer("demo-trainer-1")
            asyncio.run(running.trainer_alive("demo-trainer-1"))
            _yard(running, "trainers")
            command = (
                f"yard jobs submit --family image_classifier --dataset {dataset} --param epochs={_EPOCHS}"
            )
            print(f"\n   $ {command} --watch")
            submitted = _yard(
                running,
                "jobs",
                "submit",
                "--name",
                "digits demo",
                "--module",
                "digit-reader",
                "--family",
                "image_classifier",
                "--dataset",
                dataset,
                "--param",
                f"epochs={_EPOCHS}",
                "--org",
                _ORG,
                "--watch",
                check=False,
            )
            if submitted != 0:
                raise SystemExit(f"the demo job did not complete (yard exited {submitted})")
            accuracy = asyncio.run(_final_accuracy(running))
            print(f"\n   final validation accuracy {accuracy:.1%} on 360 held-out digits (chance: 10%)")


async def _final_accuracy(running: Platform) -> float:
    async with channel(running.job_target, running.token(roles=("auditor",))) as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        listed = await stub.ListJobs(jobs_pb2.ListJobsRequest(org_id=_ORG))
        job = await stub.GetJob(jobs_pb2.JobRef(job_id=listed.jobs[0].job_id))
    return float(job.last_epoch.val_accuracy)


def _export_digits(path: Path) -> str:
    from modelyard_trainer.datasets.digits import export_digits  # torch-free, but sklearn is heavy

    return export_digits(path).as_uri()


def _yard(running: Platform, *args: str, check: bool = True) -> int:
    yard = shutil.which("yard", path=str(Path(sys.executable).parent)) or "yard"
    env = {
        **os.environ,
        "MODELYARD_JOB_SVC_TARGET": running.job_target,
        "MODELYARD_TOKEN": running.token(org_id=_ORG, subject="demo-operator"),
    }
    completed = subprocess.run([yard, *args], env=env, check=False)
    if check and completed.returncode != 0:
        raise SystemExit(f"yard {' '.join(args)} exited {completed.returncode}")
    return completed.returncode
