"""`make demo`, parts 4 and 5: the digits become a dataset version through dataset-svc, then train.

The services run as their own processes (the launcher in `platform`), and the walk drives them the
way a user would, with the `yard` CLI: create a dataset, upload 1,797 PNG files (progress bar), two
annotators label them (the second disagrees on a few), a reviewer approves what agrees, a version is
published with its readiness report, and `jobs submit --watch` trains on that version, showing a live
progress bar and each epoch's loss, ending with the measured validation accuracy.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.demo_audit import walk_audit
from modelyard_devstack.demo_deploy import walk_edge
from modelyard_devstack.demo_registry import gates_env, release_retrained, walk_registry
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.stack import Infra
from modelyard_grpc import channel

_ORG = "demo-org"
_EPOCHS = 5
_SECOND_OPINIONS = 300  # the second annotator labels the first 300 digits …
_DISAGREE_EVERY = 25  # … and reads every 25th of them as another digit


def walk_training(
    servers: Infra, until: Callable[[], None] | None = None, started: float | None = None
) -> None:
    """Start the services and a trainer; build the digits dataset with yard, train on its version, then
    the registry, the edge rollout and the audit; at the end start the console and call `until` (which
    returns when the stack should stop; None: stop at once)."""
    with tempfile.TemporaryDirectory(prefix="modelyard-demo-") as tmp:
        workdir = Path(tmp)
        images, labels = _export_digits(workdir / "data")
        started = time.monotonic()
        with platform(servers, workdir / "platform", lease_ttl_s=10.0, env=gates_env()) as running:
            print(
                f"\n4. Datasets: dataset-svc on {running.dataset_target}, job-svc on {running.job_target}, "
                f"trainer-svc on {running.trainer_target} (ready in {time.monotonic() - started:.1f} s)"
            )
            uri = _build_dataset(running, images, labels)
            print(f"\n5. Training on {uri}")
            running.spawn_trainer("demo-trainer-1")
            asyncio.run(running.trainer_alive("demo-trainer-1"))
            _yard(running, "trainers")
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
                uri,
                "--param",
                f"epochs={_EPOCHS}",
                "--org",
                _ORG,
                "--watch",
                check=False,
            )
            if submitted != 0:
                raise SystemExit(f"the demo job did not complete (yard exited {submitted})")
            job_id, accuracy = asyncio.run(_final_accuracy(running))
            print(f"\n   final validation accuracy {accuracy:.1%} on the version's val split (chance: 10%)")
            print(f"\n   the trainer's own lines for that run (`yard jobs logs {job_id}`):")
            _yard(running, "jobs", "logs", job_id)
            smoke_run = functools.partial(_smoke_run, running, uri)
            yard = functools.partial(_yard, running)
            before_approval = datetime.now(UTC)
            released = walk_registry(running, _ORG, yard, smoke_run, workdir)
            retrain = functools.partial(_retrain_run, running, uri)
            walk_edge(running, _ORG, yard, released, lambda: release_retrained(running, _ORG, yard, retrain))
            auditor = functools.partial(_yard, running, subject="demo-auditor", roles=("auditor",))
            walk_audit(auditor, _ORG, released, before_approval)
            _open_console(running, until, started)


def _open_console(running: Platform, until: Callable[[], None] | None, started: float | None) -> None:
    url = running.start_console()
    took = f" (the walk took {time.monotonic() - started:.0f} s)" if started is not None else ""
    print(f"\n9. The console{took}: {url}")
    print("   sign in with this token (super_admin, valid one hour):")
    print(f"   {running.token(subject='demo-operator')}")
    if until is not None:
        print("   the stack stays up for you to look around: Ctrl-C stops everything")
        until()


def _smoke_run(running: Platform, uri: str) -> None:
    """One epoch at a learning rate far too small to learn: a version the gates should refuse."""
    params = ["--param", "epochs=1", "--param", "lr=0.00001"]
    _yard(running, "jobs", "submit", "--name", "smoke run", "--module", "digit-reader",
          "--family", "image_classifier", "--dataset", uri, *params, "--org", _ORG, "--watch")  # fmt: skip


def _retrain_run(running: Platform, uri: str) -> None:
    """The module trained again: the next version, a good one, to roll out and back. As many epochs as
    the first: after 3, one class's recall on the small held-out split was 7 of 9 once (0.78), under
    the 0.8 gate, and the demo stopped at the approval."""
    params = ["--param", f"epochs={_EPOCHS}"]
    _yard(running, "jobs", "submit", "--name", "retrain", "--module", "digit-reader",
          "--family", "image_classifier", "--dataset", uri, *params, "--org", _ORG, "--watch")  # fmt: skip


def _build_dataset(running: Platform, images: Path, labels: Path) -> str:
    created = _yard_json(
        running,
        "datasets",
        "create",
        "handwritten digits",
        "--module",
        "digit-reader",
        "--env",
        "dev",
        "--task",
        "classification",
        "--classes",
        ",".join(str(d) for d in range(10)),
        "--org",
        _ORG,
    )
    dataset_id = str(created["dataset_id"])
    print(f"   created {dataset_id}: classification into 0 … 9, environment dev")
    sheet = _provenance_sheet(images)
    _yard(running, "datasets", "upload", dataset_id, str(images), "--provenance", str(sheet))
    _yard(running, "datasets", "label", dataset_id, "--labels", str(labels), subject="annotator-ada")
    second = _second_opinion(labels)
    print(f"\n   a second annotator labels the first {_SECOND_OPINIONS} digits and misreads a few:")
    _yard(running, "datasets", "label", dataset_id, "--labels", str(second), subject="annotator-grace")
    print("\n   a reviewer approves every sample whose annotators agree (ties have no consensus):")
    _yard(
        running,
        "datasets",
        "review",
        "--dataset",
        dataset_id,
        "--all-labeled",
        "--approve",
        subject="reviewer-lin",
    )
    _yard(running, "datasets", "show", dataset_id, "--samples", "labeled", "--limit", "3")
    published = _yard_json(
        running, "datasets", "publish", dataset_id, "--seed", "0", "--family", "image_classifier"
    )
    split = published.get("split", {})
    assert isinstance(split, dict)
    print(
        f"   published version {published['version']}: {published['samples']} verified samples "
        f"(train {split.get('train', 0)}, val {split.get('val', 0)}, test {split.get('test', 0)}; "
        f"seeded, stratified by class), manifest sha256 {str(published['manifest_sha256'])[:16]}…"
    )
    _yard(running, "datasets", "readiness", dataset_id, "--version", str(published["version"]))
    return str(published["uri"])


def _second_opinion(labels: Path) -> Path:
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:_SECOND_OPINIONS]
    for index, row in enumerate(rows):
        if index % _DISAGREE_EVERY == _DISAGREE_EVERY - 1:
            row["class"] = str((int(row["class"]) + 1) % 10)
    path = labels.with_name("labels-second-annotator.csv")
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["filename", "class"])
        writer.writeheader()
        writer.writerows(rows)
    return path


async def _final_accuracy(running: Platform) -> tuple[str, float]:
    async with channel(running.job_target, running.token(roles=("auditor",))) as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        listed = await stub.ListJobs(jobs_pb2.ListJobsRequest(org_id=_ORG))
        job = await stub.GetJob(jobs_pb2.JobRef(job_id=listed.jobs[0].job_id))
    return job.job_id, float(job.last_epoch.val_accuracy)


def _export_digits(folder: Path) -> tuple[Path, Path]:
    from modelyard_trainer.datasets.digits import export_digits_images  # torch-free, but sklearn is heavy

    images = folder / "images"
    export_digits_images(images)
    labels = folder / "labels.csv"
    shutil.move(images / "labels.csv", labels)  # a label sheet, not a sample
    return images, labels


def _provenance_sheet(images: Path) -> Path:
    """Which of two scanners each digit came from (the seeds' source camera column), for the lineage."""
    sheet = images.parent / "provenance.csv"
    rows = [f"{png.name},scanner-{n % 2 + 1},," for n, png in enumerate(sorted(images.glob("*.png")))]
    sheet.write_text("filename,source_camera_id,captured_at,metadata\n" + "\n".join(rows) + "\n")
    return sheet


def _yard_env(running: Platform, subject: str, roles: tuple[str, ...] = ("super_admin",)) -> dict[str, str]:
    # Piped (a log, CI), rich would wrap yard's tables to 80 columns: the fleet's are wider.
    width = {} if sys.stdout.isatty() or "COLUMNS" in os.environ else {"COLUMNS": "160"}
    return {
        **width,
        **os.environ,
        "MODELYARD_JOB_SVC_TARGET": running.job_target,
        "MODELYARD_DATASET_SVC_TARGET": running.dataset_target,
        "MODELYARD_REGISTRY_SVC_TARGET": running.registry_target,
        "MODELYARD_DEPLOY_TARGET": running.deploy_target,
        "MODELYARD_REGISTRY_PUBLIC_KEYS": running.base_env["MODELYARD_REGISTRY_PUBLIC_KEYS"],
        "MODELYARD_TRAINER_SVC_TARGET": running.trainer_target,
        "MODELYARD_EVENT_PUBLIC_KEYS": running.base_env["MODELYARD_EVENT_PUBLIC_KEYS"],  # what auditors pin
        "MODELYARD_TOKEN": running.token(roles, org_id=None if "auditor" in roles else _ORG, subject=subject),
    }


def _yard_path() -> str:
    return shutil.which("yard", path=str(Path(sys.executable).parent)) or "yard"


def _yard(
    running: Platform,
    *args: str,
    check: bool = True,
    subject: str = "demo-operator",
    roles: tuple[str, ...] = ("super_admin",),
) -> int:
    print(f"\n   $ yard {' '.join(_quoted(a) for a in args)}")
    completed = subprocess.run([_yard_path(), *args], env=_yard_env(running, subject, roles), check=False)
    if check and completed.returncode != 0:
        raise SystemExit(f"yard {' '.join(args)} exited {completed.returncode}")
    return completed.returncode


def _yard_json(running: Platform, *args: str) -> dict[str, object]:
    print(f"\n   $ yard {' '.join(_quoted(a) for a in args)}")
    completed = subprocess.run(
        [_yard_path(), "--json", *args],
        env=_yard_env(running, "demo-operator"),
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise SystemExit(f"yard {' '.join(args)} exited {completed.returncode}: {completed.stderr}")
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def _quoted(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
