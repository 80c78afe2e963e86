"""A checkpoint after every epoch, complete on disk, hashed, loadable without unpickling code."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from trainer_samples import RecordingObserver, SpecFactory

from modelyard_trainer.training import Completed, TrainingControl, run_training
from modelyard_trainer.training.durable_files import save_atomically


def test_every_epoch_writes_a_checkpoint_whose_sha256_matches_its_bytes(
    digits_npz: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    spec = make_spec("image_classifier", digits_npz, epochs=3, channels=4)

    outcome = run_training(spec, observer, TrainingControl())

    assert isinstance(outcome, Completed)
    checkpoints = [checkpoint for _, checkpoint in observer.epochs]
    assert [(c.epochs_done, c.step) for c in checkpoints] == [(1, 0), (2, 0), (3, 0)]
    for checkpoint in checkpoints:
        content = checkpoint.path.read_bytes()
        assert checkpoint.sha256 == hashlib.sha256(content).hexdigest()
        assert checkpoint.size_bytes == len(content)
        payload = torch.load(checkpoint.path, weights_only=True)
        assert (payload["epochs_done"], payload["step"]) == (checkpoint.epochs_done, checkpoint.step)
        assert {"model", "optimizer", "scaler", "rng_cpu"} <= payload.keys()
    assert sorted(p.name for p in (spec.workdir / "checkpoints").iterdir()) == [
        "epoch0001-step000000.pt",
        "epoch0002-step000000.pt",
        "epoch0003-step000000.pt",
    ]  # no temp files left behind


def test_an_atomic_save_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    save_atomically({"version": torch.tensor([1])}, target)

    written = save_atomically({"version": torch.tensor([2])}, target)

    assert torch.load(target, weights_only=True)["version"].item() == 2
    assert written.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
