"""What a valid job request is: name, ai_module, family, hyperparameters, dataset_uri, priority,
description, and the kind with its model input (job_kinds).

Every field is checked and every problem is reported at once, so a user fixes a request in one
round trip rather than one field per attempt.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard_events.domain_errors import InvalidFields
from modelyard_events.schemas.bounds import REASON_MAX_CHARS, URI_MAX_CHARS
from modelyard_events.schemas.hyperparameters import FAMILIES, HyperparameterError, validate_hyperparameters
from modelyard_events.schemas.jobs import ModelInput
from modelyard_job.domain.hyperparameter_caps import hyperparameter_cap_problems
from modelyard_job.domain.job_kinds import kind_problems

NAME_MAX_CHARS = 200
AI_MODULE_MAX_CHARS = 64
PRIORITY_MIN, PRIORITY_MAX = 0, 100
DATASET_URI_SCHEMES = ("dataset://", "file://")

_SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")


class InvalidJobSpec(InvalidFields):
    """One or more fields of a job request are wrong (`problems`: dotted field → what to fix)."""


def check_priority(priority: int) -> str | None:
    """What is wrong with a priority, or None when it is within 0..100."""
    if PRIORITY_MIN <= priority <= PRIORITY_MAX:
        return None
    return f"must be between {PRIORITY_MIN} (lowest) and {PRIORITY_MAX} (highest); got {priority}"


def validated_job_spec(
    *,
    name: str,
    ai_module: str,
    family: str,
    hyperparameters: dict[str, Any],
    dataset_uri: str,
    priority: int,
    description: str = "",
    kind: str = "training",
    model_input: ModelInput | None = None,
    evaluation_split: str | None = None,
    evaluation_id: str | None = None,
) -> dict[str, Any]:
    """The hyperparameters with the family's defaults filled in (JSON-ready), or InvalidJobSpec.

    Guarantees on return: name has 1..200 characters and is not blank, ai_module is a slug, family is
    known and the hyperparameters fit it and the platform's caps (hyperparameter_caps), dataset_uri is
    dataset://… or file://…, priority is 0..100, the description has at most 2,000 characters, and
    the kind fits its model input (job_kinds.kind_problems). An evaluation records no
    hyperparameters ({} on return): the trainer evaluates with the artifact's own configuration.
    """
    problems: dict[str, str] = {}
    checks = {
        "name": _check_name(name),
        "ai_module": _check_ai_module(ai_module),
        "dataset_uri": _check_dataset_uri(dataset_uri),
        "priority": check_priority(priority),
        "description": _check_description(description),
    }
    problems.update({field: what for field, what in checks.items() if what is not None})
    problems.update(
        kind_problems(
            kind=kind,
            ai_module=ai_module,
            model_input=model_input,
            evaluation_split=evaluation_split,
            evaluation_id=evaluation_id,
        )
    )
    filled: dict[str, Any]
    if kind == "evaluation":
        filled, hyperparameter_problems = {}, _check_family(family)
    else:
        filled, hyperparameter_problems = _check_hyperparameters(family, hyperparameters)
    problems.update(hyperparameter_problems)
    if problems:
        raise InvalidJobSpec(problems)
    return filled


def _check_name(name: str) -> str | None:
    if not name.strip():
        return "must not be empty; give the job a name people will recognise (1 to 200 characters)"
    if len(name) > NAME_MAX_CHARS:
        return f"must be at most {NAME_MAX_CHARS} characters; got {len(name)}"
    return None


def _check_description(description: str) -> str | None:
    if len(description) > REASON_MAX_CHARS:
        return f"must be at most {REASON_MAX_CHARS:,} characters; got {len(description):,}"
    return None


def _check_ai_module(ai_module: str) -> str | None:
    if _SLUG.fullmatch(ai_module) and len(ai_module) <= AI_MODULE_MAX_CHARS:
        return None
    return (
        "must be a slug: lowercase letters and digits, words joined by single '-' or '_' "
        f"(e.g. defect-detector), at most {AI_MODULE_MAX_CHARS} characters; got {ai_module!r}"
    )


def _check_dataset_uri(dataset_uri: str) -> str | None:
    if len(dataset_uri) > URI_MAX_CHARS:
        return f"must be at most {URI_MAX_CHARS} characters; got {len(dataset_uri):,}"
    scheme = next((s for s in DATASET_URI_SCHEMES if dataset_uri.startswith(s)), None)
    if scheme is not None and len(dataset_uri) > len(scheme):
        return None
    return (
        "must name a dataset version (dataset://<dataset>/<version>) or a local file (file:///path); "
        f"got {dataset_uri!r}"
    )


def _check_family(family: str) -> dict[str, str]:
    if family in FAMILIES:
        return {}
    return {"family": f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}"}


def _check_hyperparameters(family: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    # An unknown family is a problem of `family` itself; its hyperparameters cannot be judged without it.
    if unknown := _check_family(family):
        return {}, unknown
    try:
        filled = validate_hyperparameters(family, values)
    except HyperparameterError as error:
        return {}, {f"hyperparameters.{field}": what for field, what in error.problems.items()}
    dumped = filled.model_dump(mode="json")
    return dumped, hyperparameter_cap_problems(dumped)
