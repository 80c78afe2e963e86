"""Dataset upload: samples/s and MB/s through dataset-svc's UploadSamples, against copying the same files.

Two workloads on freshly generated files: many small PNG images (A) and a few large MP4-like
videos (B). Ours: the files streamed over gRPC in 1 MiB chunks into a new dataset, timed from the
client opening the first file to the server's last reply (staged, hashed, inspected, promoted into
the local-folder blob store, recorded). Peers: `shutil.copy2` of the same files into a new folder on
the same disk, with and without fsync. Median of the runs; new random content every run, because
the blob store keeps one copy per SHA-256 across datasets. Results: bench/results/datasets.{json,md};
see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from upload_files import Workload, fsync_path, total_bytes, work_floor
from upload_profile import kinds_of_work, py_spy
from upload_report import Measured, machine, write_results

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.stack import infra
from modelyard_grpc import channel

CHUNK_BYTES = 1 << 20
VIDEO_BYTES = 16 << 20
ORG = "bench-datasets"
SIZES = {
    "full": (Workload("images", 2000, 500), Workload("videos", 8, 8, VIDEO_BYTES)),
    "quick": (Workload("images", 200, 500), Workload("videos", 2, 2, VIDEO_BYTES)),
}
SIDES = ("ours", "copy2", "copy2 + fsync")

Stub = datasets_pb2_grpc.DatasetServiceStub
Profiler = Callable[[str], AbstractContextManager[object]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images, 2 videos, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per side (default 3, quick 1)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile dataset-svc during ours into DIR (py-spy raw stacks); print, write no results",
    )
    args = parser.parse_args()
    workloads = SIZES["quick" if args.quick else "full"]
    runs = args.runs or (1 if args.quick else 3)
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dataset-bench-") as tmp, infra(durable=True) as servers:
        folder = Path(tmp)
        with platform(servers, folder / "platform") as running:
            profiler = _profiler(running, args.py_spy) if args.py_spy else None
            measured = asyncio.run(measure(running, folder, workloads, runs, profiler))
            if args.py_spy:
                _print_profiles(args.py_spy, workloads)
                return
        host = machine(servers.database_url, folder / "platform", load_at_start)
    parameters = {"quick": args.quick, "runs": runs, "chunk_bytes": CHUNK_BYTES, "org": ORG}
    print(write_results(host, parameters, measured))


async def measure(
    running: Platform, folder: Path, workloads: Sequence[Workload], runs: int, profiler: Profiler | None
) -> list[Measured]:
    """Every side on every workload `runs` times, alternating the order of the sides run by run."""
    results = [Measured(w, {side: [] for side in SIDES}) for w in workloads]
    async with channel(running.dataset_target, running.token()) as ch:
        stub = Stub(ch)
        await _warm_up(stub, folder / "warm-up")
        for run in range(runs):
            for index, result in enumerate(results):
                files = folder / "files" / f"{result.workload.key}-{run}"
                paths = result.workload.write(files, seed=run * len(results) + index)
                result.files, result.bytes = len(paths), total_bytes(paths)
                if run == 0:
                    result.floor = work_floor(paths)
                order = SIDES if run % 2 == 0 else SIDES[::-1]
                for side in order:
                    os.sync()  # start each side with no dirty pages left by generation or the side before
                    profile = profiler(result.workload.key) if profiler and side == "ours" else nullcontext()
                    with profile:
                        seconds, tail = await _one_side(stub, running, side, result.workload, paths)
                    result.runs_s[side].append(seconds)
                    if side == "ours":
                        result.ours_tail_s.append(tail)
                    _progress(f"run {run + 1}/{runs} {result.workload.key} {side}: {seconds:.3f} s")
                shutil.rmtree(files)
    return results


async def _one_side(
    stub: Stub, running: Platform, side: str, workload: Workload, paths: list[Path]
) -> tuple[float, float]:
    if side == "ours":
        dataset_id = await _new_dataset(stub, workload.key)
        return await upload(stub, dataset_id, paths, workload.files_per_call)
    target = running.workdir / "peer-copies" / uuid.uuid4().hex
    try:
        return copy_files(paths, target, fsync=side.endswith("fsync")), 0.0
    finally:
        shutil.rmtree(target)


async def upload(
    stub: Stub, dataset_id: str, paths: Sequence[Path], files_per_call: int
) -> tuple[float, float]:
    """Seconds to upload `paths` in sequential calls of `files_per_call` files (every file must be
    new), and of those, the seconds between each call's last message and its reply, summed."""
    started, tails = time.perf_counter(), []
    replies = []
    for i in range(0, len(paths), files_per_call):
        sent: list[float] = []
        replies.append(
            await stub.UploadSamples(_upload_stream(dataset_id, paths[i : i + files_per_call], sent))
        )
        tails.append(time.perf_counter() - sent[0])
    seconds = time.perf_counter() - started
    added = sum(reply.added for reply in replies)
    stored = sum(reply.bytes_added for reply in replies)
    if (added, stored) != (len(paths), total_bytes(paths)):
        raise RuntimeError(f"expected {len(paths)} new files, server added {added} ({stored:,} bytes)")
    return seconds, sum(tails)


async def _upload_stream(
    dataset_id: str, paths: Sequence[Path], sent: list[float]
) -> AsyncIterator[datasets_pb2.UploadSamplesRequest]:
    yield datasets_pb2.UploadSamplesRequest(
        start=datasets_pb2.UploadStart(dataset_id=dataset_id, files=len(paths))
    )
    for path in paths:
        header = datasets_pb2.UploadFile(filename=path.name, size_bytes=path.stat().st_size)
        yield datasets_pb2.UploadSamplesRequest(file=header)
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                yield datasets_pb2.UploadSamplesRequest(chunk=chunk)
    sent.append(time.perf_counter())  # gRPC asks for the next message only once the last one is sent


def copy_files(paths: Sequence[Path], target: Path, fsync: bool) -> float:
    """Seconds to `shutil.copy2` every file into the new folder `target` (+ fsync each, and the folder)."""
    started = time.perf_counter()
    target.mkdir(parents=True)
    for path in paths:
        copied = Path(shutil.copy2(path, target / path.name))
        if fsync:
            fsync_path(copied)
    if fsync:
        fsync_path(target)
    return time.perf_counter() - started


async def _new_dataset(stub: Stub, name: str) -> str:
    dataset = await stub.CreateDataset(
        datasets_pb2.CreateDatasetRequest(
            org_id=ORG,
            name=f"bench {name}",
            ai_module="upload-bench",
            environment=datasets_pb2.ENVIRONMENT_DEV,
            label_schema=datasets_pb2.LabelSchema(
                task=datasets_pb2.LABEL_TASK_CLASSIFICATION, classes=["a", "b"]
            ),
        )
    )
    return str(dataset.dataset_id)


async def _warm_up(stub: Stub, folder: Path) -> None:
    # Untimed: the first upload imports Pillow's plugins and opens the service's connections.
    for n, workload in enumerate((Workload("warm", 20, 20), Workload("warm", 1, 1, 1 << 20))):
        paths = workload.write(folder, seed=10_000 + n)
        await upload(stub, await _new_dataset(stub, "warm-up"), paths, workload.files_per_call)
    shutil.rmtree(folder)


def _profiler(running: Platform, folder: Path) -> Profiler:
    folder.mkdir(parents=True, exist_ok=True)
    pid = running.processes["dataset-svc"].pid
    counter: Iterator[int] = iter(range(1_000_000))
    return lambda key: py_spy(pid, folder / f"{key}-{next(counter)}.txt")


def _print_profiles(folder: Path, workloads: Sequence[Workload]) -> None:
    for workload in workloads:
        kinds = kinds_of_work(sorted(folder.glob(f"{workload.key}-*.txt")))
        total = sum(kinds.values()) or 1.0
        print(f"\ndataset-svc during ours, {workload.key} ({total:.2f} s of samples, all threads):")
        for kind, seconds in kinds.items():
            print(f"  {seconds:7.2f} s  {seconds / total:5.1%}  {kind}")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
