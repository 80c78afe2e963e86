"""The check CreateJob makes before fine-tuning: the base is a registered model version of the job's
organization, ai_module and family, approved or released (DESIGN §4, issue 12 item 8).

The port is here; the gRPC adapter (registry_client.py) asks registry-svc, which owns versions.
Whether the new data fits the base's input schema (image shape, feature columns) is checked by the
trainer when it loads the base's configuration: job-svc sees neither the data's columns nor the
base's schema, and a run that does not fit fails saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelyard_events.domain_errors import IllegalTransition, InvalidArgument
from modelyard_events.schemas.jobs import ModelInput

FINE_TUNABLE = frozenset({"approved", "released"})


@dataclass(frozen=True)
class ModelVersionFacts:
    """What job-svc needs to know about a registered model version."""

    version_id: str
    org_id: str
    ai_module: str
    family: str
    status: str  # draft | testing | approved | released | deprecated
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int

    def model_input(self) -> ModelInput:
        """The version as a job's model input (what the trainer fetches and checks)."""
        return ModelInput(
            version_id=self.version_id,
            ai_module=self.ai_module,
            semantic_version=self.semantic_version,
            artifact_sha256=self.artifact_sha256,
            artifact_size_bytes=self.artifact_size_bytes,
        )


class ModelVersionLookup(Protocol):
    """Reads a registered model version (None when the registry has none of that id)."""

    async def model_version(self, version_id: str) -> ModelVersionFacts | None:
        """The facts of a version, or None."""
        ...


async def checked_base_version(
    lookup: ModelVersionLookup | None, version_id: str, org_id: str, ai_module: str, family: str
) -> ModelInput:
    """The base version as the job's model input; else InvalidArgument (unknown, another organization,
    module or family) or IllegalTransition (not approved or released) naming the version and why."""
    if lookup is None:
        raise IllegalTransition(
            "this job-svc is not connected to registry-svc, so base versions cannot be checked"
        )
    facts = await lookup.model_version(version_id)
    if facts is None:
        raise InvalidArgument(
            "base_version_id", f"no model version {version_id!r} is registered; see `yard models list`"
        )
    mismatch = _mismatch(facts, org_id, ai_module, family)
    if mismatch is not None:
        raise InvalidArgument("base_version_id", f"model version {version_id} {mismatch}")
    if facts.status not in FINE_TUNABLE:
        raise IllegalTransition(
            f"model version {version_id} ({facts.ai_module} {facts.semantic_version}) is {facts.status}; "
            "only approved or released versions can be fine-tuned"
        )
    return facts.model_input()


def _mismatch(facts: ModelVersionFacts, org_id: str, ai_module: str, family: str) -> str | None:
    if facts.org_id != org_id:
        return f"belongs to organization {facts.org_id}, not {org_id}; fine-tune a version of your own"
    if facts.ai_module != ai_module:
        return (
            f"is a model of ai_module {facts.ai_module!r}, not {ai_module!r}; "
            "a fine-tuned model stays in its base's module"
        )
    if facts.family != family:
        return f"is a {facts.family}, not a {family}; fine-tune with the base's family"
    return None
