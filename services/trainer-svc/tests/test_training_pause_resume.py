"""Pause mid-epoch, resume from the checkpoint: the run ends exactly where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from trainer_samples import RecordingObserver, SpecFactory

from modelyard_trainer.training import (
    Completed,
    Paused,
    Progress,
    TrainingControl,
    TrainingError,
    run_training,
)

# dropout > 0 makes the run depend on the RNG state, which the checkpoint must carry too
RUN = {"epochs": 3, "channels": 8, "batch_size": 64, "dropout": 0.2, "lr": 3e-3}


def _pause_at(control: TrainingControl, epoch: int, step: int) -> RecordingObserver:
    observer = RecordingObserver()

    def maybe_pause(progress: Progress) -> None:
        if (progress.epoch, progress.step) == (epoch, step):
            control.request_pause()

    observer.on_progress = maybe_pause
    return observer


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(path, weights_only=True)["state_dict"]
    return state


def test_paused_run_resumes_mid_epoch_to_the_same_weights_and_losses(
    digits_npz: Path, make_spec: SpecFactory
) -> None:
    whole = RecordingObserver()
    straight = run_training(
        make_spec("image_classifier", digits_npz, "straight", **RUN), whole, TrainingControl()
    )

    control = TrainingControl()
    first = _pause_at(control, epoch=2, step=7)
    paused = run_training(
        make_spec("image_classifier", digits_npz, "interrupted", progress_interval_s=0, **RUN), first, control
    )
    assert isinstance(paused, Paused)
    assert (paused.checkpoint.epochs_done, paused.checkpoint.step) == (1, 7)
    assert max((p.epoch, p.step) for p in first.progress) == (2, 7)  # nothing ran after the request

    second = RecordingObserver()
    resumed = run_training(
        make_spec("image_classifier", digits_npz, "interrupted", resume_from=paused.checkpoint.path, **RUN),
        second,
        TrainingControl(),
    )

    assert isinstance(straight, Completed)
    assert isinstance(resumed, Completed)
    (start,) = second.starts
    assert (start.start_epoch, start.start_step) == (2, 7)
    assert second.phases[-1] == ("building_model", "building the model on cpu and restoring its checkpoint")
    assert [r.epoch for r, _ in second.epochs] == [2, 3]  # epoch 1 is not repeated
    interrupted_losses = [
        loss for r, _ in first.epochs + second.epochs for loss in (r.train_loss, r.val_loss)
    ]
    straight_losses = [loss for r, _ in whole.epochs for loss in (r.train_loss, r.val_loss)]
    assert interrupted_losses == pytest.approx(straight_losses, rel=1e-5)
    ours, theirs = _weights(resumed.artifact_path), _weights(straight.artifact_path)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6, msg=name)


def test_pause_between_epochs_resumes_at_the_next_epoch(digits_npz: Path, make_spec: SpecFactory) -> None:
    control = TrainingControl()
    observer = RecordingObserver()
    observer.on_epoch = lambda result: control.request_pause()
    paused = run_training(make_spec("image_classifier", digits_npz, epochs=2, channels=4), observer, control)

    assert isinstance(paused, Paused)
    assert paused.checkpoint == observer.epochs[0][1]  # the epoch's checkpoint, not a second file
    later = RecordingObserver()
    resumed = run_training(
        make_spec("image_classifier", digits_npz, epochs=2, channels=4, resume_from=paused.checkpoint.path),
        later,
        TrainingControl(),
    )
    assert isinstance(resumed, Completed)
    assert (later.starts[0].start_epoch, later.starts[0].start_step) == (2, 0)
    assert [r.epoch for r, _ in later.epochs] == [2]


def test_resume_refuses_a_checkpoint_of_other_hyperparameters(
    digits_npz: Path, make_spec: SpecFactory
) -> None:
    control = TrainingControl()
    control.request_pause()
    paused = run_training(make_spec("image_classifier", digits_npz, channels=4), RecordingObserver(), control)
    assert isinstance(paused, Paused)

    other = make_spec("image_classifier", digits_npz, channels=8, resume_from=paused.checkpoint.path)
    with pytest.raises(TrainingError, match="hyperparameters differ: channels"):
        run_training(other, RecordingObserver(), TrainingControl())


def test_resume_refuses_a_damaged_checkpoint(
    tmp_path: Path, digits_npz: Path, make_spec: SpecFactory
) -> None:
    damaged = tmp_path / "epoch0001-step000000.pt"
    damaged.write_bytes(b"not a checkpoint")

    with pytest.raises(TrainingError, match=r"checkpoint epoch0001-step000000.pt is unreadable"):
        run_training(
            make_spec("image_classifier", digits_npz, resume_from=damaged),
            RecordingObserver(),
            TrainingControl(),
        )


def test_resume_from_the_last_epoch_checkpoint_only_writes_the_artifact(
    digits_npz: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    first = run_training(
        make_spec("image_classifier", digits_npz, epochs=2, channels=4), observer, TrainingControl()
    )
    assert isinstance(first, Completed)
    _, last = observer.epochs[-1]

    later = RecordingObserver()
    again = run_training(
        make_spec("image_classifier", digits_npz, "again", epochs=2, channels=4, resume_from=last.path),
        later,
        TrainingControl(),
    )

    assert isinstance(again, Completed)
    assert later.epochs == []
    assert again.metrics == first.metrics
    for name, tensor in _weights(first.artifact_path).items():
        assert torch.equal(tensor, _weights(again.artifact_path)[name]), name


def test_resume_refuses_a_checkpoint_past_the_runs_epochs(
    digits_npz: Path, make_spec: SpecFactory, observer: RecordingObserver
) -> None:
    run_training(make_spec("image_classifier", digits_npz, epochs=2, channels=4), observer, TrainingControl())
    _, last = observer.epochs[-1]

    shorter = make_spec(
        "image_classifier", digits_npz, "shorter", epochs=1, channels=4, resume_from=last.path
    )
    with pytest.raises(TrainingError, match=r"it has 2 epochs done, more than this run's epochs \(1\)"):
        run_training(shorter, RecordingObserver(), TrainingControl())
