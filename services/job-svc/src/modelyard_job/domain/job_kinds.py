"""The two kinds of job and what each asks of its request: training (from scratch, or fine-tuning a
registered base version) and evaluation (measuring a registered version on a held-out split).

An evaluation run is asked for by the registry (ModelEvaluationRequested), not by a person through
CreateJob: the registry owns the evaluation, so its job id, organization, module, family, data and
split come from the registry's event. It has no hyperparameters of its own: the trainer evaluates
with the configuration stored in the model's artifact, so the job records none (a tabular family
has no default target column to fill in anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard_events.schemas.bounds import NAME_MAX_CHARS
from modelyard_events.schemas.jobs import JobKind, ModelInput
from modelyard_events.schemas.registry import ModelEvaluationRequested

JOB_KINDS: tuple[JobKind, ...] = ("training", "evaluation")


@dataclass(frozen=True)
class EvaluationRun:
    """What the registry asked to be measured, and the priority job-svc gives evaluation runs."""

    job_id: str
    org_id: str
    ai_module: str
    family: str
    dataset_uri: str
    split: str
    model_input: ModelInput
    evaluation_id: str
    requested_by: str
    priority: int

    @classmethod
    def requested(cls, event: ModelEvaluationRequested, priority: int) -> EvaluationRun:
        """The run the registry's request describes, at job-svc's priority for evaluations."""
        model_input = ModelInput(
            version_id=event.version_id,
            ai_module=event.ai_module,
            semantic_version=event.semantic_version,
            artifact_sha256=event.artifact_sha256,
            artifact_size_bytes=event.artifact_size_bytes,
        )
        return cls(
            job_id=event.job_id,
            org_id=event.org_id,
            ai_module=event.ai_module,
            family=event.family,
            dataset_uri=event.dataset_uri,
            split=event.split,
            model_input=model_input,
            evaluation_id=event.evaluation_id,
            requested_by=event.requested_by,
            priority=priority,
        )

    @property
    def name(self) -> str:
        """The job's name: "evaluate <module> <semantic version>" (cut to a name's 200 characters)."""
        return f"evaluate {self.ai_module} {self.model_input.semantic_version}"[:NAME_MAX_CHARS]

    @property
    def description(self) -> str:
        """What the run measures, for people reading the job."""
        return (
            f"evaluation {self.evaluation_id} of model version {self.model_input.version_id} "
            f"on the {self.split} split of {self.dataset_uri}"
        )

    def job_fields(self) -> dict[str, Any]:
        """The evaluation job's fields, as TrainingJob.create takes them and JobCreated records them."""
        return {
            "job_id": self.job_id,
            "org_id": self.org_id,
            "name": self.name,
            "ai_module": self.ai_module,
            "family": self.family,
            "dataset_uri": self.dataset_uri,
            "hyperparameters": {},
            "priority": self.priority,
            "created_by": self.requested_by,
            "description": self.description,
            "kind": "evaluation",
            "model_input": self.model_input,
            "evaluation_split": self.split,
            "evaluation_id": self.evaluation_id,
        }


def kind_problems(
    *,
    kind: str,
    ai_module: str,
    model_input: ModelInput | None,
    evaluation_split: str | None,
    evaluation_id: str | None,
) -> dict[str, str]:
    """Field → what to fix, for a request whose kind and model input do not fit together.

    Guarantees when empty: an evaluation names the version it measures, the split and the registry's
    evaluation id; a training job names neither split nor evaluation; any model input is a version
    of the job's own ai_module (a fine-tuned model stays in its module).
    """
    problems: dict[str, str] = {}
    if kind == "evaluation":
        if model_input is None:
            problems["model_input"] = "an evaluation run measures a registered model version; name one"
        if not evaluation_split:
            problems["evaluation_split"] = "must name the held-out split to measure (e.g. val or test)"
        if not evaluation_id:
            problems["evaluation_id"] = "must name the registry's evaluation the run reports to"
    elif kind == "training":
        if evaluation_split or evaluation_id:
            problems["kind"] = (
                "only evaluation jobs measure a split for an evaluation; this is a training job"
            )
    else:
        problems["kind"] = f"unknown kind {kind!r}; choose one of {', '.join(JOB_KINDS)}"
    if model_input is not None and model_input.ai_module != ai_module:
        field = "base_version_id" if kind == "training" else "model_input"
        problems[field] = (
            f"model version {model_input.version_id} belongs to ai_module {model_input.ai_module!r}, "
            f"not {ai_module!r}"
        )
    return problems
