"""Trainer throughput: `run_training` against a bare PyTorch loop on the same model, data and device.

Both sides train the digits CNN on the same .npz file (scikit-learn's digits,
tiled to make epochs long enough to time), with the same batch size, optimizer,
seed and device, in one process, alternating, median of three runs. Results go
to bench/results/training.json and training.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelyard_events.schemas.hyperparameters import ImageClassifierHyperparameters, validate_hyperparameters
from modelyard_trainer.datasets.digits import export_digits
from modelyard_trainer.training import (
    CheckpointInfo,
    Completed,
    EpochResult,
    Progress,
    StartInfo,
    TrainingControl,
    TrainingSpec,
    run_training,
)
from modelyard_trainer.training.models import build_model

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.97
# Per device: enough samples that an epoch takes about a second; the GPU needs far more of them.
WORKLOADS = {
    "cpu": {"samples": 40_000, "epochs": 3, "batch_size": 64},
    "cuda": {"samples": 500_000, "epochs": 5, "batch_size": 256},
}
QUICK = {"cpu": {"samples": 8_000, "epochs": 2}, "cuda": {"samples": 100_000, "epochs": 3}}
EVAL_BATCH = 1024  # as modelyard_trainer.training.evaluation: max(batch_size, 1024)


@dataclass(frozen=True)
class Workload:
    """What both sides train: `samples` digits (80 % train), `epochs`, `batch_size`, on `device`."""

    device: str
    samples: int
    epochs: int
    batch_size: int
    channels: int
    repeats: int


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds from the .npz file to a trained model, and of the optimizer steps alone."""

    wall_s: float
    train_s: float
    train_samples: int
    val_accuracy: float


class EpochClock:
    """Observer that keeps ours' own measured training time per epoch (validation excluded)."""

    def __init__(self) -> None:
        self.train_s = 0.0
        self.train_samples = 0

    def phase(self, phase: str, message: str) -> None:
        pass

    def started(self, info: StartInfo) -> None:
        self.train_samples = info.train_samples

    def progressed(self, progress: Progress) -> None:
        pass

    def epoch_completed(self, result: EpochResult, checkpoint: CheckpointInfo) -> None:
        self.train_s += self.train_samples / result.samples_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quick", action="store_true", help="a fifth of the samples, for a smoke run")
    parser.add_argument("--batch-size", type=int, help="override the device's default batch size")
    args = parser.parse_args()
    workload = _workload(args.device, args.quick, args.batch_size)
    hyperparameters = validate_hyperparameters(
        "image_classifier",
        {"epochs": workload.epochs, "batch_size": workload.batch_size, "channels": workload.channels},
    )
    assert isinstance(hyperparameters, ImageClassifierHyperparameters)
    with tempfile.TemporaryDirectory(prefix="training-bench-") as folder:
        dataset = _tiled_digits(Path(folder) / "digits.npz", workload.samples)
        ours_runs, bare_runs = _measure(workload, hyperparameters, dataset, Path(folder))
    print(_write_results(workload, hyperparameters, ours_runs, bare_runs))


def _workload(device: str, quick: bool, batch_size: int | None) -> Workload:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here")
    sizes = {**WORKLOADS[device], **(QUICK[device] if quick else {})}
    if batch_size:
        sizes["batch_size"] = batch_size
    return Workload(device, sizes["samples"], sizes["epochs"], sizes["batch_size"], channels=32, repeats=3)


def _tiled_digits(path: Path, samples: int) -> Path:
    export_digits(path)
    with np.load(path) as digits:
        images, labels = digits["images"], digits["labels"]
    copies = -(-samples // len(images))
    np.savez(path, images=np.tile(images, (copies, 1, 1))[:samples], labels=np.tile(labels, copies)[:samples])
    return path


def _measure(
    workload: Workload, hp: ImageClassifierHyperparameters, dataset: Path, folder: Path
) -> tuple[list[Run], list[Run]]:
    warm_up = hp.model_copy(update={"epochs": 1})
    _progress("warm-up (1 epoch each, untimed)")
    _ours(workload, warm_up, dataset, folder / "warm-up")
    _bare(workload, warm_up, dataset)
    ours_runs: list[Run] = []
    bare_runs: list[Run] = []
    # Alternate which side goes first so drift of the machine (clocks, other load) hits both.
    for n in range(workload.repeats):
        sides = [("ours", ours_runs), ("bare", bare_runs)]
        for side, runs in sides if n % 2 == 0 else reversed(sides):
            if side == "ours":
                run = _ours(workload, hp, dataset, folder / f"ours-{n}")
            else:
                run = _bare(workload, hp, dataset)
            runs.append(run)
            rate = hp.epochs * run.train_samples / run.wall_s
            _progress(
                f"run {n + 1} {side}: {run.wall_s:.2f} s, {rate:,.0f} samples/s, acc {run.val_accuracy:.3f}"
            )
    return ours_runs, bare_runs


def _ours(workload: Workload, hp: ImageClassifierHyperparameters, dataset: Path, workdir: Path) -> Run:
    spec = TrainingSpec("bench", 1, "image_classifier", dataset.as_uri(), hp, workdir, device=workload.device)
    clock = EpochClock()
    began = time.perf_counter()
    outcome = run_training(spec, clock, TrainingControl())
    wall = time.perf_counter() - began
    assert isinstance(outcome, Completed)
    return Run(wall, clock.train_s, clock.train_samples, outcome.metrics["val_accuracy"])


def _bare(workload: Workload, hp: ImageClassifierHyperparameters, dataset: Path) -> Run:
    """A plain PyTorch loop: data on the device, index slicing, AMP on CUDA, validation each epoch."""
    device = torch.device(workload.device)
    began = time.perf_counter()
    with np.load(dataset) as digits:
        images = torch.from_numpy(digits["images"]).float().unsqueeze(1)
        labels = torch.from_numpy(digits["labels"])
    split = torch.randperm(len(images), generator=torch.Generator().manual_seed(hp.seed))
    held_out = round(len(images) * hp.val_fraction)
    train, val = split[held_out:], split[:held_out]
    low, high = images[train].min(), images[train].max()
    images = (images - low) / (high - low)
    images = (images - images[train].mean()) / images[train].std()
    train_x, train_y = images[train].to(device), labels[train].to(device)
    val_x, val_y = images[val].to(device), labels[val].to(device)
    torch.manual_seed(hp.seed)
    model = build_model("image_classifier", hp, (1, 8, 8), 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    train_s, accuracy = 0.0, 0.0
    for _ in range(hp.epochs):
        epoch_began = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), device=device)
        for start in range(0, len(train_x), hp.batch_size):
            rows = order[start : start + hp.batch_size]
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss = nn.functional.cross_entropy(model(train_x[rows]), train_y[rows])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            scaler.step(optimizer)
            scaler.update()
        if amp:
            torch.cuda.synchronize(device)
        train_s += time.perf_counter() - epoch_began
        accuracy = _bare_validation(model, val_x, val_y, amp)
    return Run(time.perf_counter() - began, train_s, len(train_x), accuracy)


def _bare_validation(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, amp: bool) -> float:
    model.eval()
    with torch.inference_mode():
        loss = torch.zeros((), device=inputs.device)
        correct = torch.zeros((), device=inputs.device)
        for start in range(0, len(inputs), EVAL_BATCH):
            x, y = inputs[start : start + EVAL_BATCH], labels[start : start + EVAL_BATCH]
            with torch.autocast(inputs.device.type, dtype=torch.float16, enabled=amp):
                outputs = model(x).float()
            loss += nn.functional.cross_entropy(outputs, y) * len(y)
            correct += (outputs.argmax(dim=1) == y).sum()
        return float(correct.item()) / len(inputs)


def _write_results(
    workload: Workload, hp: ImageClassifierHyperparameters, ours: list[Run], bare: list[Run]
) -> str:
    samples = hp.epochs * ours[0].train_samples
    end_to_end = "end to end: .npz file → trained model"
    steps_only = "optimizer steps only (validation excluded)"
    rows = [
        _row(end_to_end, workload, samples, [r.wall_s for r in ours], [r.wall_s for r in bare]),
        _row(steps_only, workload, samples, [r.train_s for r in ours], [r.train_s for r in bare]),
    ]
    document = {
        "machine": _machine(workload.device),
        "parameters": {
            **asdict(workload),
            "train_samples": ours[0].train_samples,
            "lr": hp.lr,
            "optimizer": hp.optimizer,
            "median_of_runs": workload.repeats,
        },
        "rows": rows,
        "val_accuracy": {"ours": [r.val_accuracy for r in ours], "bare": [r.val_accuracy for r in bare]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "training.json").write_text(json.dumps(document, indent=2) + "\n")
    table = _markdown(rows)
    (RESULTS / "training.md").write_text(table)
    return table


def _row(
    name: str, workload: Workload, samples: int, ours_s: list[float], bare_s: list[float]
) -> dict[str, Any]:
    ours_rate, bare_rate = samples / statistics.median(ours_s), samples / statistics.median(bare_s)
    ratio = ours_rate / bare_rate
    return {
        "row": name,
        "device": workload.device,
        "ours_samples_per_s": round(ours_rate, 1),
        "bare_samples_per_s": round(bare_rate, 1),
        "ratio": round(ratio, 4),
        "target": TARGET,
        "met": ratio >= TARGET,
        "ours_runs_s": [round(s, 4) for s in ours_s],
        "bare_runs_s": [round(s, 4) for s in bare_s],
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| measure | device | ours samples/s | bare samples/s | ratio | target | met? |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['row']} | {row['device']} | {row['ours_samples_per_s']:,.0f} "
            f"| {row['bare_samples_per_s']:,.0f} | {row['ratio']:.3f} | ≥ {row['target']} "
            f"| {'yes' if row['met'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def _machine(device: str) -> dict[str, Any]:
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    if device == "cuda":
        machine["gpu"] = torch.cuda.get_device_name()
        machine["cuda"] = torch.version.cuda
    return machine


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
