"""From a `JobDispatched` and the trainer's settings to the engine's `TrainingSpec`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from modelyard_events.schemas.hyperparameters import validate_hyperparameters
from modelyard_events.schemas.jobs import JobDispatched
from modelyard_trainer.config import TrainerSettings
from modelyard_trainer.training import TrainingSpec


def training_spec(
    dispatch: JobDispatched,
    settings: TrainerSettings,
    dataset_uri: str | None = None,
    base_artifact: Path | None = None,
) -> TrainingSpec:
    """The run of `dispatch` in `<root>/<job_id>/attempt-<n>/<dispatch_id>`, resumed from its checkpoint.

    `dataset_uri` replaces the dispatch's (a `dataset://` version's materialized manifest);
    `base_artifact` is the fetched base version a fine-tuning run starts from.

    Raises HyperparameterError (a ValueError) for hyperparameters that do not fit
    the family, ValueError for a checkpoint URI that is not a local file or a job or
    dispatch id that is not a safe directory name.
    """
    return TrainingSpec(
        job_id=dispatch.job_id,
        attempt=dispatch.attempt,
        family=dispatch.family,
        dataset_uri=dataset_uri or dispatch.dataset_uri,
        hyperparameters=validate_hyperparameters(dispatch.family, dispatch.hyperparameters),
        workdir=run_folder(dispatch, settings),
        resume_from=path_of_file_uri(dispatch.checkpoint_uri) if dispatch.checkpoint_uri else None,
        device=settings.device,
        progress_interval_s=settings.progress_interval_s,
        memory_budget_bytes=settings.run_memory_budget_bytes,
        base_artifact=base_artifact,
    )


def run_folder(dispatch: JobDispatched, settings: TrainerSettings) -> Path:
    """`<root>/<job_id>/attempt-<n>/<dispatch_id>`: the run's checkpoints, artifact and failure text.

    Raises ValueError for a job or dispatch id that is not a safe directory name.
    """
    return settings.workdir(
        safe_segment(dispatch.job_id), dispatch.attempt, safe_segment(dispatch.dispatch_id)
    )


def path_of_file_uri(uri: str) -> Path:
    """The local path of a `file:///abs/path` URI (as `Path.as_uri()` writes them)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise ValueError(f"checkpoint {uri!r} is not a local file:// URI this trainer can read")
    return Path(unquote(parsed.path))


def safe_segment(name: str) -> str:
    """`name` if it can be one directory name under the run root (no separators, not `.` or `..`)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{name!r} cannot name a directory under the run root")
    return name
