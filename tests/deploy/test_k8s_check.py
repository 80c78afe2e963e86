"""`make k8s-check` (tools/k8s_check): deploy/k8s as it is passes; a copy of it with one typo in each of
several resources fails, with a line naming each typo's file, resource, JSON path and fault."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.deploy.k8s_manifests import K8S
from tools.k8s_check.cli import main
from tools.k8s_check.crds import CrdSchemas, strict
from tools.k8s_check.resources import Problem
from tools.k8s_check.workloads import check_workload

# (file, text, typo, the line the check must print): each replaces the first occurrence of the text.
# No two typos meet in one resource's schema check (kubernetes-validate reports its best match only),
# so one run of the check over one broken copy finds them all.
TYPOS = {
    "deployment-field": (
        "services.yaml",
        "  replicas: 2\n",
        "  replica: 2\n",
        "services.yaml: Deployment/job-svc: spec.replica: unknown field",
    ),
    "strimzi-field": (
        "kafka.yaml",
        "    listeners:\n",
        "    listners:\n",
        "kafka.yaml: Kafka/modelyard: spec.kafka.listners: unknown field",
    ),
    "strimzi-enum": (
        "kafka-users.yaml",
        "operations: [Describe, Write]\n",
        "operations: [Describe, Writ]\n",
        "kafka-users.yaml: KafkaUser/dataset-svc: spec.authorization.acls[1].operations[1]: "
        "'Writ' is not one of",
    ),
    "cnpg-field": (
        "postgres.yaml",
        "  instances: 3\n",
        "  instance: 3\n",
        "postgres.yaml: Cluster/modelyard-pg: spec.instance: unknown field",
    ),
    "custom-resource-metadata": (
        "kafka.yaml",
        "  labels:\n    strimzi.io/cluster: modelyard\nspec:\n  replicas: 3\n",
        "  lables:\n    strimzi.io/cluster: modelyard\nspec:\n  replicas: 3\n",
        "kafka.yaml: KafkaNodePool/combined: metadata.lables: unknown field",
    ),
    "strimzi-api-version": (
        "kafka.yaml",
        "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata:\n  name: modelyard-job-events\n",
        "apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: modelyard-job-events\n",
        "kafka.yaml: KafkaTopic/modelyard-job-events: apiVersion: no vendored CRD schema for "
        "kafka.strimzi.io/v1 KafkaTopic",
    ),
    "built-in-api-version": (
        "network-policies.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n",
        "apiVersion: networking.k8s.io/v2\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n",
        "network-policies.yaml: NetworkPolicy/default-deny: kind: "
        "no schema for networking.k8s.io/v2 NetworkPolicy",
    ),
    "gpu-request": (
        "services.yaml",
        "limits: {memory: 16Gi, nvidia.com/gpu: 1}",
        "limits: {memory: 16Gi}",
        "services.yaml: Deployment/trainer-worker: "
        'spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]: '
        "a trainer worker needs at least one GPU",
    ),
    "security-context": (
        "services.yaml",
        "            readOnlyRootFilesystem: true\n",
        "",
        "services.yaml: Deployment/job-svc: spec.template.spec.containers[0].securityContext."
        "readOnlyRootFilesystem: must be true",
    ),
    "probe": (
        "services.yaml",
        '          readinessProbe:\n            exec: {command: [python, -m, modelyard_grpc.probe, "50053",'
        " --server-name, dataset-svc]}\n            periodSeconds: 5\n            timeoutSeconds: 4\n",
        "",
        "services.yaml: Deployment/dataset-svc: spec.template.spec.containers[0].readinessProbe: missing",
    ),
    "edge-component": (
        "edge/edge-endpoints.yaml",
        "  externalTrafficPolicy: Local\n  selector: {app.kubernetes.io/name: deploy-svc}",
        "  externalTraficPolicy: Local\n  selector: {app.kubernetes.io/name: deploy-svc}",
        "edge/edge-endpoints.yaml: Service/deploy-svc-edge: spec.externalTraficPolicy: unknown field",
    ),
}


def run_check(*args: str) -> tuple[int, str]:
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = main(list(args))
    return status, printed.getvalue()


@pytest.fixture(scope="module")
def repository_output() -> tuple[int, str]:
    return run_check(str(K8S))


@pytest.fixture(scope="module")
def broken_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("manifests") / "k8s"
    shutil.copytree(K8S, copy)
    for file, text, typo, _ in TYPOS.values():
        manifest = copy / file
        original = manifest.read_text()
        assert text in original, f"{file} no longer holds the text this typo changes: {text!r}"
        manifest.write_text(original.replace(text, typo, 1))
    return copy


@pytest.fixture(scope="module")
def broken_output(broken_copy: Path) -> tuple[int, str]:
    return run_check(str(broken_copy))


class TestTheRepositoryManifests:
    def test_pass_every_check(self, repository_output: tuple[int, str]) -> None:
        status, printed = repository_output
        assert status == 0, printed
        assert "FAIL" not in printed
        assert printed.rstrip().endswith(", 0 problems")

    def test_print_one_line_per_resource_with_its_file(self, repository_output: tuple[int, str]) -> None:
        _, printed = repository_output
        assert (
            "services.yaml  Deployment/trainer-worker  (kubernetes 1.37 --strict, workload rules)" in printed
        )
        assert "kafka.yaml  Kafka/modelyard  (CRD schema of strimzi/strimzi-kafka-operator@0.47.0" in printed
        assert (
            "postgres.yaml  Cluster/modelyard-pg  (CRD schema of cloudnative-pg/cloudnative-pg@v1.28.0"
            in printed
        )
        assert "edge/edge-endpoints.yaml  Ingress/registry-downloads" in printed  # the component's resources


class TestACopyWithTypos:
    def test_fails(self, broken_output: tuple[int, str]) -> None:
        status, _ = broken_output
        assert status == 1

    @pytest.mark.parametrize("typo", TYPOS)
    def test_names_each_typo(self, broken_output: tuple[int, str], broken_copy: Path, typo: str) -> None:
        _, printed = broken_output
        *_, expected = TYPOS[typo]
        assert f"{broken_copy}/{expected}" in printed, printed

    def test_that_kustomize_cannot_read_fails_too(self, tmp_path: Path) -> None:
        copy = tmp_path / "k8s"
        shutil.copytree(K8S, copy)
        (copy / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: [\n")
        status, printed = run_check(str(copy))
        assert status == 1
        assert f"FAIL  {copy}: kustomize:" in printed


class TestStrictCrdSchemas:
    SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer"}, "name": {"type": "string"}},
                # a branch names only some of the fields: it must not refuse the others
                "oneOf": [{"properties": {"size": {}}, "required": ["size"]}, {"required": ["name"]}],
            },
            "config": {
                "type": "object",
                "properties": {"a": {}},
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {}}}},
        },
    }

    def test_close_every_object_the_api_server_would_prune(self) -> None:
        tightened = strict(self.SCHEMA)
        assert tightened["additionalProperties"] is False
        assert tightened["properties"]["spec"]["additionalProperties"] is False
        assert tightened["properties"]["labels"]["additionalProperties"]["additionalProperties"] is False

    def test_leave_open_what_preserves_unknown_fields_and_the_branches_of_one_of(self) -> None:
        tightened = strict(self.SCHEMA)
        assert "additionalProperties" not in tightened["properties"]["config"]
        assert "additionalProperties" not in tightened["properties"]["spec"]["oneOf"][0]

    def test_find_a_typo_against_a_small_vendored_schema(self, tmp_path: Path) -> None:
        (tmp_path / "example.com").mkdir()
        vendored = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "source": "test",
            "openAPIV3Schema": self.SCHEMA,
        }
        (tmp_path / "example.com" / "Widget-v1.json").write_text(json.dumps(vendored))
        schemas = CrdSchemas(tmp_path)
        widget = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 1, "nmae": "x"}}
        assert schemas.covers(widget)
        assert schemas.check(widget) == ("test", [Problem("spec.nmae", "unknown field")])
        assert schemas.check({**widget, "spec": {"name": "x"}}) == ("test", [])


class TestWorkloadRules:
    def deployment(
        self, container: dict[str, object], annotations: dict[str, str] | None = None
    ) -> dict[str, object]:
        pod = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}
        return {
            "metadata": {"name": "w", "annotations": annotations or {}},
            "spec": {"template": {"spec": {**pod, "containers": [container]}}},
        }

    GOOD: ClassVar[dict[str, Any]] = {
        "name": "c",
        "command": ["python", "-m", "modelyard_trainer", "work"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "1", "memory": "1Gi"},
            "limits": {"memory": "1Gi", "nvidia.com/gpu": "1"},
        },
        "livenessProbe": {},
        "readinessProbe": {},
    }

    def test_a_container_that_keeps_them_all_passes(self) -> None:
        assert check_workload(self.deployment(self.GOOD)) == []

    def test_a_gpu_request_other_than_the_limit_fails(self) -> None:
        resources = {
            "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 2},
            "limits": {"memory": "1Gi", "nvidia.com/gpu": 1},
        }
        [problem] = check_workload(self.deployment({**self.GOOD, "resources": resources}))
        assert problem.path == 'spec.template.spec.containers[0].resources.requests["nvidia.com/gpu"]'

    def test_missing_probes_pass_only_with_a_reason(self) -> None:
        unprobed = {k: v for k, v in self.GOOD.items() if not k.endswith("Probe")}
        assert [p.path for p in check_workload(self.deployment(unprobed))] == [
            "spec.template.spec.containers[0].livenessProbe",
            "spec.template.spec.containers[0].readinessProbe",
        ]
        assert check_workload(self.deployment(unprobed, {"modelyard/no-probes": "serves nothing"})) == []

    def test_an_exemption_where_probes_exist_fails(self) -> None:
        [problem] = check_workload(self.deployment(self.GOOD, {"modelyard/no-probes": "stale"}))
        assert problem.path == 'metadata.annotations["modelyard/no-probes"]'
