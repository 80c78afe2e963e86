"""What deploy/k8s declares, read for the tests: the manifests by kind, a Deployment's environment and
secrets, and the connections its NetworkPolicies and Kafka ACLs allow."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
Manifest = dict[str, Any]


@functools.cache
def manifests() -> tuple[Manifest, ...]:
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    return tuple(doc for doc in docs if doc is not None and doc.get("kind") != "Kustomization")


def of_kind(kind: str) -> list[Manifest]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def kustomization() -> Manifest:
    loaded: Manifest = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def containers(deployment: Manifest) -> Iterator[Manifest]:
    pod = deployment["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def deployment_ids() -> list[str]:
    return [d["metadata"]["name"] for d in of_kind("Deployment")]


def service_deployment(name: str) -> Manifest:
    return next(d for d in of_kind("Deployment") if d["metadata"]["name"] == name)


def env_of(deployment: Manifest) -> dict[str, Manifest]:
    """The containers' `env` entries by name."""
    return {e["name"]: e for c in containers(deployment) for e in c.get("env", [])}


def env_secrets(deployment: Manifest) -> set[str]:
    """The secrets the containers take as environment: `secretKeyRef`s and `envFrom` secretRefs."""
    return {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in env_of(deployment).values()
        if "secretKeyRef" in e.get("valueFrom", {})
    } | {
        s["secretRef"]["name"]
        for c in containers(deployment)
        for s in c.get("envFrom", [])
        if "secretRef" in s
    }


def config_map() -> dict[str, str]:
    [config] = [m for m in of_kind("ConfigMap") if m["metadata"]["name"] == "modelyard-config"]
    data: dict[str, str] = config["data"]
    return data


def effective_env(deployment: Manifest) -> dict[str, str]:
    """The plain values a container sees: modelyard-config, overridden by its own `env` values."""
    own = {name: e["value"] for name, e in env_of(deployment).items() if "value" in e}
    return {**config_map(), **own}


def pods_selected(selector: Manifest) -> set[str]:
    """The app (or CloudNativePG cluster) names a pod selector picks out by label."""
    labels = selector.get("matchLabels", {})
    named = {labels.get("app.kubernetes.io/name"), labels.get("cnpg.io/cluster")} - {None}
    return named | {
        value
        for e in selector.get("matchExpressions", [])
        if e["key"] == "app.kubernetes.io/name" and e["operator"] == "In"
        for value in e["values"]
    }


def egress_of(app: str) -> set[tuple[str, int]]:
    """(the pods' name, app or cluster label, or "*" for an address block; port) the app may reach."""
    reached = set()
    for policy in of_kind("NetworkPolicy"):
        if app not in pods_selected(policy["spec"]["podSelector"]):
            continue  # among them the namespace-wide policies: default-deny and DNS
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", [{}]):
                labels = peer.get("podSelector", {}).get("matchLabels", {})
                target = (
                    labels.get("app.kubernetes.io/name")
                    or labels.get("cnpg.io/cluster")
                    or (labels.get("strimzi.io/cluster") and "kafka")
                )
                reached |= {(target or "*", port["port"]) for port in rule.get("ports", [{"port": 0}])}
    return reached


def ingress_of(app: str) -> set[tuple[str, int]]:
    """(the sending pods' app or cluster name, "namespace" for another namespace's pods, or "*" for
    anyone; port) the app's pods admit."""
    admitted = set()
    for policy in of_kind("NetworkPolicy"):
        if app not in pods_selected(policy["spec"]["podSelector"]):
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", [{}]):
                senders = (
                    {"namespace"}
                    if "namespaceSelector" in peer
                    else pods_selected(peer.get("podSelector", {})) or {"*"}
                )
                admitted |= {(sender, port["port"]) for sender in senders for port in rule["ports"]}
    return admitted


def acls_of(user: str, resource: str = "topic") -> set[tuple[str, str]]:
    """(name, operation) a KafkaUser is granted on resources of one type (topic, group)."""
    [found] = [u for u in of_kind("KafkaUser") if u["metadata"]["name"] == user]
    acls = found["spec"]["authorization"]["acls"]
    return {
        (a["resource"]["name"], op)
        for a in acls
        if a["resource"]["type"] == resource
        for op in a["operations"]
    }


def runs_mount(deployment: Manifest, *, required: bool = True) -> Manifest:
    """The container's mount of the modelyard-runs claim ({} when it has none and not `required`)."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = [
        m
        for c in containers(deployment)
        for m in c.get("volumeMounts", [])
        if volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName") == "modelyard-runs"
    ]
    assert mounts or not required, deployment["metadata"]["name"]
    return mounts[0] if mounts else {}
