"""A rendered resource, where it came from, and a problem found in it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema

Document = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One resource as kustomize rendered it, and the manifest file that declared it."""

    origin: str
    doc: Document

    @property
    def ref(self) -> str:
        """Kind/name, as kubectl names it."""
        return f"{self.doc.get('kind', '?')}/{self.doc.get('metadata', {}).get('name', '?')}"


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where in the resource (a JSON path; empty for the whole resource)."""

    path: str
    message: str


def json_path(parts: Iterable[str | int]) -> str:
    """`spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]` from its parts."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "." in part or "/" in part:
            text += f'["{part}"]'
        else:
            text += f".{part}"
    return text.removeprefix(".")


def schema_problems(error: jsonschema.ValidationError) -> list[Problem]:
    """A schema error as problems, an unknown field (the usual typo) named in the path itself."""
    here = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        unknown = sorted(name for name in error.instance if name not in known)
        return [Problem(json_path([*here, name]), "unknown field") for name in unknown]
    return [Problem(json_path(here), error.message)]
