"""Check one rendered resource: which checks applied to it, and what they found."""

from __future__ import annotations

from tools.k8s_check.builtin import KUBERNETES_VERSION, UnknownKind, check_builtin, check_metadata
from tools.k8s_check.crds import CrdSchemas
from tools.k8s_check.resources import Problem, Resource
from tools.k8s_check.workloads import check_workload, is_workload


def check(resource: Resource, crds: CrdSchemas) -> tuple[list[str], list[Problem]]:
    """(the checks that ran, the problems found) for one resource."""
    doc = resource.doc
    if crds.covers(doc):
        source, problems = crds.check(doc)
        # The repository and tag, not the file: enough to tell which operator version judged it.
        checks = [f"CRD schema of {source.split(':')[0]}" if source else "CRD schema"]
        return [*checks, "ObjectMeta"], problems + check_metadata(doc)
    try:
        problems = check_builtin(doc)
    except UnknownKind as unknown:
        message = (
            f"no schema for {unknown}: not a kind of Kubernetes {KUBERNETES_VERSION}, and no CRD vendored"
        )
        return [], [Problem("kind", message)]
    checks = [f"kubernetes {KUBERNETES_VERSION} --strict"]
    if is_workload(doc):
        checks.append("workload rules")
        problems += check_workload(doc)
    return checks, problems
