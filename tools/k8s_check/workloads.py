"""The project's own rules for the pods it runs (deploy/k8s/README.md, "Transport and pod security").

Every container of a Deployment, StatefulSet or DaemonSet: CPU and memory requests and a memory
limit, liveness and readiness probes, and a security context that runs it as non-root with
RuntimeDefault seccomp, no privilege escalation, a read-only root filesystem and no capabilities.
A trainer worker (`modelyard_trainer work`) also asks for a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tools.k8s_check.resources import Document, Problem, json_path

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# A workload whose containers cannot be probed says why in this annotation (the reason is its value),
# instead of a YAML comment, which kustomize drops before the check sees the resource.
NO_PROBES = "modelyard/no-probes"
GPU = "nvidia.com/gpu"
# No CPU limit is required: a limit throttles a busy gRPC server well below what its node has idle;
# the memory limit is the one that keeps a leak from taking the node's other pods down.
REQUESTS = ("cpu", "memory")
LIMITS = ("memory",)


def is_workload(doc: Document) -> bool:
    """Whether the project's pod rules apply to the resource."""
    return doc.get("kind") in WORKLOAD_KINDS and str(doc.get("apiVersion")) == "apps/v1"


def check_workload(doc: Document) -> list[Problem]:
    """Every rule broken by the workload's pod template, each with its JSON path."""
    pod = doc["spec"]["template"]["spec"]
    exempt = doc.get("metadata", {}).get("annotations", {}).get(NO_PROBES)
    problems = []
    for path, container in containers(pod):
        problems += security(path, container, pod.get("securityContext", {}))
        problems += resources(path, container)
        if path[-2] == "containers":
            problems += probes(path, container, exempt)
        if runs_trainer_worker(container):
            problems += gpu(path, container)
    return problems


def containers(pod: Document) -> Iterator[tuple[list[str | int], Document]]:
    """(JSON path, container) of every init and app container."""
    for key in ("initContainers", "containers"):
        for index, container in enumerate(pod.get(key, [])):
            yield ["spec", "template", "spec", key, index], container


def security(path: list[str | int], container: Document, pod_context: Document) -> list[Problem]:
    """The container's effective security context (its own setting, else the pod's)."""
    own = container.get("securityContext", {})
    here = [*path, "securityContext"]
    wanted: list[tuple[str, Any, Any]] = [
        ("runAsNonRoot", own.get("runAsNonRoot", pod_context.get("runAsNonRoot")), True),
        ("allowPrivilegeEscalation", own.get("allowPrivilegeEscalation"), False),
        ("readOnlyRootFilesystem", own.get("readOnlyRootFilesystem"), True),
    ]
    problems = [
        Problem(json_path([*here, field]), f"must be {str(value).lower()} (is {actual!r})")
        for field, actual, value in wanted
        if actual is not value
    ]
    seccomp = own.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(
            Problem(json_path([*here, "seccompProfile", "type"]), f"must be RuntimeDefault (is {seccomp!r})")
        )
    if "ALL" not in own.get("capabilities", {}).get("drop", []):
        problems.append(Problem(json_path([*here, "capabilities", "drop"]), "must drop ALL capabilities"))
    return problems


def resources(path: list[str | int], container: Document) -> list[Problem]:
    """CPU and memory requests and a memory limit: the scheduler's facts and the node's safety."""
    declared = container.get("resources", {})
    return [
        Problem(
            json_path([*path, "resources", section, name]),
            f"missing: every container sets its {section[:-1]}",
        )
        for section, names in (("requests", REQUESTS), ("limits", LIMITS))
        for name in names
        if name not in declared.get(section, {})
    ]


def probes(path: list[str | int], container: Document, exempt: str | None) -> list[Problem]:
    """Liveness and readiness probes, unless the workload's NO_PROBES annotation says why not."""
    missing = [probe for probe in ("livenessProbe", "readinessProbe") if probe not in container]
    if exempt is not None:
        if not missing:
            here = json_path(["metadata", "annotations", NO_PROBES])
            return [Problem(here, "the containers have probes: drop the exemption")]
        return []
    return [
        Problem(json_path([*path, probe]), f"missing (or annotate {NO_PROBES}: <why>)") for probe in missing
    ]


def runs_trainer_worker(container: Document) -> bool:
    """Whether the container runs `python -m modelyard_trainer work`, a worker that trains on a GPU."""
    argv = [*container.get("command", []), *container.get("args", [])]
    return "modelyard_trainer" in argv and "work" in argv


def gpu(path: list[str | int], container: Document) -> list[Problem]:
    """A whole GPU: the limit is the request for extended resources (any request must equal it)."""
    declared = container.get("resources", {})
    limit, request = declared.get("limits", {}).get(GPU), declared.get("requests", {}).get(GPU)
    here = [*path, "resources", "limits", GPU]
    if count(limit) < 1:
        return [Problem(json_path(here), f"a trainer worker needs at least one GPU (is {limit!r})")]
    if request is not None and count(request) != count(limit):
        return [Problem(json_path([*path, "resources", "requests", GPU]), f"must equal the limit {limit}")]
    return []


def count(quantity: Any) -> int:
    """A whole-number quantity (1 or "1"); 0 for anything else (GPUs come whole)."""
    text = str(quantity)
    return int(text) if text.isdigit() else 0
