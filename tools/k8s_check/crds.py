"""Custom resources (Strimzi, CloudNativePG), validated by jsonschema against vendored CRD schemas."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from tools.k8s_check.resources import Document, Problem, schema_problems

CRDS = Path(__file__).resolve().parent / "crds"

# Where one schema nests another as a field's or an item's value: only those nodes describe fields.
# Branches of anyOf/oneOf/allOf/not add value checks over the same fields (structural schemas), so
# closing them would reject fields their siblings declare.
FIELD_SCHEMAS = ("properties", "patternProperties")
NESTED_SCHEMAS = ("items", "additionalProperties")


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever the API server would drop them.

    The API server prunes (and `kubectl apply`'s strict field validation rejects) any field that
    the CRD's structural schema does not declare, unless a node says
    x-kubernetes-preserve-unknown-fields; jsonschema allows them unless told otherwise.
    """
    if not isinstance(schema, dict):
        return schema
    tightened = dict(schema)
    for key in FIELD_SCHEMAS:
        if key in schema:
            tightened[key] = {name: strict(sub) for name, sub in schema[key].items()}
    for key in NESTED_SCHEMAS:
        if isinstance(schema.get(key), dict):
            tightened[key] = strict(schema[key])
    open_ended = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not open_ended:
        tightened["additionalProperties"] = False
    return tightened


@dataclass(frozen=True)
class CrdSchema:
    """One served version of one custom kind, and where its schema came from."""

    api_version: str
    kind: str
    source: str
    validator: jsonschema.Draft4Validator


class CrdSchemas:
    """The vendored schemas of a folder (crds/<group>/<kind>-<version>.json), by apiVersion and kind."""

    def __init__(self, folder: Path = CRDS) -> None:
        self.schemas: dict[tuple[str, str], CrdSchema] = {}
        for path in sorted(folder.glob("*/*.json")):
            vendored = json.loads(path.read_text())
            # OpenAPI 3.0 schemas are JSON Schema draft 4 in their keywords (exclusiveMinimum a bool).
            validator = jsonschema.Draft4Validator(strict(vendored["openAPIV3Schema"]))
            key = (vendored["apiVersion"], vendored["kind"])
            self.schemas[key] = CrdSchema(*key, vendored["source"], validator)
        self.groups = {api_version.split("/")[0] for api_version, _ in self.schemas}

    def covers(self, doc: Document) -> bool:
        """Whether the resource's API group is one whose CRDs are vendored here."""
        return str(doc.get("apiVersion", "")).split("/")[0] in self.groups

    def check(self, doc: Document) -> tuple[str, list[Problem]]:
        """(the schema's source, problems) of a resource of a covered group."""
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        schema = self.schemas.get((api_version, kind))
        if schema is None:
            versions = sorted(v for v, k in self.schemas if k == kind) or ["none"]
            message = f"no vendored CRD schema for {api_version} {kind} (vendored: {', '.join(versions)})"
            return "", [Problem("apiVersion", message)]
        errors = sorted(schema.validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        return schema.source, [problem for error in errors for problem in schema_problems(error)]
