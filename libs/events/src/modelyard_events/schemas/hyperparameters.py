"""Hyperparameters per model family: validated by job-svc at CreateJob, read by the trainer.

Every field has a type, a range and a default; unknown keys are refused, so a
typo (`learning_rate` for `lr`) is an error that names the field, not a
silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard_events.canonical import canonical_json
from modelyard_events.schemas.bounds import JSON_OBJECT_MAX_BYTES, NAME_MAX_CHARS

MAX_FEATURE_COLUMNS = 1000

Family = Literal["image_classifier", "tabular_classifier", "tabular_regressor"]
FAMILIES: tuple[str, ...] = ("image_classifier", "tabular_classifier", "tabular_regressor")


class CommonHyperparameters(BaseModel):
    """What every family takes."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    epochs: int = Field(10, ge=1, le=1000, description="passes over the training split")
    batch_size: int = Field(64, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0, le=10.0, description="learning rate")
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    weight_decay: float = Field(0.0, ge=0, le=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for validation")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds data split, init and order")


class ImageClassifierHyperparameters(CommonHyperparameters):
    """A small CNN: two conv blocks of `channels` and `2*channels` filters, then a linear head."""

    channels: int = Field(32, ge=4, le=512)


class TabularHyperparameters(CommonHyperparameters):
    """An MLP over numeric columns of a CSV or JSONL file."""

    target_column: str = Field(min_length=1, max_length=NAME_MAX_CHARS)
    feature_columns: list[Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS)]] | None = Field(
        None, max_length=MAX_FEATURE_COLUMNS, description="default: every column but the target"
    )
    hidden_layers: list[Annotated[int, Field(ge=1, le=8192)]] = Field(
        default_factory=lambda: [64, 64], min_length=1, max_length=16
    )


HYPERPARAMETERS: dict[str, type[CommonHyperparameters]] = {
    "image_classifier": ImageClassifierHyperparameters,
    "tabular_classifier": TabularHyperparameters,
    "tabular_regressor": TabularHyperparameters,
}


class HyperparameterError(ValueError):
    """Hyperparameters that do not fit the family; `problems` maps each field to what to fix."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"hyperparameters.{field}: {msg}" for field, msg in problems.items()))


def validate_hyperparameters(family: str, values: dict[str, Any]) -> CommonHyperparameters:
    """The family's hyperparameters with defaults filled in, or HyperparameterError naming each field."""
    model = HYPERPARAMETERS.get(family)
    if model is None:
        choices = ", ".join(FAMILIES)
        raise HyperparameterError({"family": f"unknown family {family!r}; choose one of {choices}"})
    try:
        validated = model.model_validate(values)
    except ValidationError as error:
        raise HyperparameterError(_problems(error, model)) from error
    size = len(canonical_json(validated.model_dump(mode="json")).encode())
    if size > JSON_OBJECT_MAX_BYTES:  # what a job's events can hold (schemas.bounds)
        raise HyperparameterError(
            {"(all)": f"take {size:,} bytes as JSON, more than the {JSON_OBJECT_MAX_BYTES:,} a job holds"}
        )
    return validated


def _problems(error: ValidationError, model: type[CommonHyperparameters]) -> dict[str, str]:
    problems: dict[str, str] = {}
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(all)"
        if item["type"] == "extra_forbidden":
            known = ", ".join(sorted(model.model_fields))
            problems[field] = f"unknown hyperparameter; this family takes {known}"
        elif item["type"] == "missing":
            problems[field] = "required for this family"
        else:
            problems[field] = f"{item['msg'].lower()} (got {item.get('input')!r})"
    return problems
