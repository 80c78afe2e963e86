"""deploy/k8s for deploy-svc and the edge endpoints: deploy-svc holds its own keys and nothing of the
registry's, reaches only PostgreSQL, Kafka, registry-svc and job-svc, and edge agents reach it, and
registry-svc's downloads, from outside through the edge component (deploy/k8s/edge) with TLS."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from modelyard_artifacts.signed_urls import UrlSigner
from modelyard_deploy.config import DeploySettings
from modelyard_events.signing import Ed25519Key
from modelyard_grpc.auth import SERVICES
from tests.deploy.k8s_manifests import (
    K8S,
    Manifest,
    acls_of,
    effective_env,
    egress_of,
    env_of,
    env_secrets,
    ingress_of,
    of_kind,
    runs_mount,
    service_deployment,
)

EDGE = K8S / "edge"


def edge_component() -> Manifest:
    loaded: Manifest = yaml.safe_load((EDGE / "kustomization.yaml").read_text())
    return loaded


def edge_manifests() -> list[Manifest]:
    return [
        doc
        for path in edge_component()["resources"]
        for doc in yaml.safe_load_all((EDGE / path).read_text())
        if doc is not None
    ]


def edge_patches() -> list[Manifest]:
    return [yaml.safe_load((EDGE / p["path"]).read_text()) for p in edge_component()["patches"]]


def container_port(app: str, name: str) -> int:
    """The containerPort a Deployment's container names `name`."""
    [container] = service_deployment(app)["spec"]["template"]["spec"]["containers"]
    ports: dict[str, int] = {p["name"]: p["containerPort"] for p in container["ports"]}
    return ports[name]


class TestDeploySvcPod:
    """Its own database role, signing key, Kafka user and token; no artifact, blob or registry key."""

    def test_deploy_svc_takes_only_its_own_secrets(self) -> None:
        deploy = service_deployment("deploy-svc")
        assert env_secrets(deploy) == {"modelyard-pg-deploy", "modelyard-events-deploy", "deploy-svc"}
        volumes = deploy["spec"]["template"]["spec"]["volumes"]
        assert {v["secret"]["secretName"] for v in volumes if "secret" in v} == {
            "modelyard-cluster-ca-cert",
            "deploy-svc-grpc-tls",
            "modelyard-token-deploy-svc",
        }
        assert not runs_mount(deploy, required=False)  # it never touches an artifact

    def test_deploy_svc_runs_its_module_on_the_port_its_settings_name(self) -> None:
        [container] = service_deployment("deploy-svc")["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", "modelyard_deploy"]
        assert container_port("deploy-svc", "grpc") == DeploySettings.model_fields["deploy_grpc_port"].default
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"][3:] == ["50056", "--server-name", "deploy-svc"]

    def test_deploy_svc_dials_registry_svc_and_job_svc_with_its_own_token(self) -> None:
        deploy = service_deployment("deploy-svc")
        env = effective_env(deploy)
        assert "registry_svc_target" in DeploySettings.model_fields
        assert "job_svc_target" in DeploySettings.model_fields
        assert env["MODELYARD_REGISTRY_SVC_TARGET"] == "registry-svc:50054"  # ReadEvents
        assert env["MODELYARD_JOB_SVC_TARGET"] == "job-svc:50051"  # ListJobs (the mobile status)
        assert env_of(deploy)["MODELYARD_TOKEN_FILE"]["value"] == "/var/run/modelyard/token/token"
        assert DeploySettings.model_fields["token_audience"].default == "deploy-svc"
        assert "deploy-svc" in SERVICES  # a token can be minted for it


class TestDeployNetwork:
    """Operators and edge agents call it; it calls only what it needs."""

    def test_deploy_svc_admits_grpc_from_anyone(self) -> None:
        assert ingress_of("deploy-svc") == {("*", 50056)}

    def test_deploy_svc_reaches_postgres_kafka_registry_svc_and_job_svc_only(self) -> None:
        assert egress_of("deploy-svc") == {
            ("modelyard-pg", 5432),
            ("kafka", 9093),
            ("registry-svc", 50054),  # ReadEvents
            ("job-svc", 50051),  # ListJobs
        }
        assert ("deploy-svc", 5432) in ingress_of("modelyard-pg")


class TestDeployKafka:
    """It publishes the deploy topic and consumes its own and the registry's; edges have no Kafka user."""

    def test_deploy_svc_reads_its_own_and_the_registry_topic_and_writes_only_its_own(self) -> None:
        granted = acls_of("deploy-svc")
        assert {t for t, op in granted if op == "Read"} == {
            "modelyard.deploy.events",
            "modelyard.registry.events",
        }
        assert {t for t, op in granted if op == "Write"} == {
            "modelyard.deploy.events",
            "modelyard.deploy.events.dlq",
            "modelyard.registry.events.dlq",
        }
        assert ("deploy-svc.", "Read") in acls_of("deploy-svc", "group")
        topics = {t["spec"]["topicName"] for t in of_kind("KafkaTopic")}
        assert {"modelyard.deploy.events", "modelyard.deploy.events.dlq"} <= topics

    def test_no_edge_agent_has_a_kafka_user(self) -> None:
        users = {u["metadata"]["name"] for u in of_kind("KafkaUser")}
        services = {"dataset-svc", "job-svc", "trainer-svc", "registry-svc", "deploy-svc"}
        assert users == services | {"trainer-worker"}


class TestEdgeComponent:
    """deploy/k8s/edge: the endpoints agents reach from outside, gRPC passed through, downloads over TLS."""

    def test_the_component_lists_files_that_exist_and_every_resource_is_namespaced(self) -> None:
        component = edge_component()
        assert component["kind"] == "Component"
        files = [*component["resources"], *(p["path"] for p in component["patches"])]
        assert all((EDGE / f).is_file() for f in files)
        assert {p.name for p in EDGE.glob("*.yaml")} == {"kustomization.yaml", *files}
        for doc in edge_manifests():
            # an overlay's `namespace` does not reach a component's own resources
            assert doc["metadata"]["namespace"] == "modelyard", doc["metadata"]["name"]

    def test_load_balancers_pass_grpc_through_to_deploy_svc_and_registry_svc_only(self) -> None:
        services = [d for d in edge_manifests() if d["kind"] == "Service"]
        balancers = [s for s in services if s["spec"]["type"] == "LoadBalancer"]
        assert balancers == services
        exposed = set()
        for service in balancers:
            app = service["spec"]["selector"]["app.kubernetes.io/name"]
            for port in service["spec"]["ports"]:
                assert port["targetPort"] == "grpc"  # TLS gRPC only, never the plain-HTTP downloads
                target = container_port(app, port["targetPort"])
                assert ("*", target) in ingress_of(app)  # the base admits it from outside
                exposed.add((app, target))
        assert exposed == {("deploy-svc", 50056), ("registry-svc", 50054)}

    def test_the_downloads_ingress_ends_tls_for_the_address_registry_svc_signs(self) -> None:
        [ingress] = [d for d in edge_manifests() if d["kind"] == "Ingress"]
        [tls] = ingress["spec"]["tls"]
        [rule] = ingress["spec"]["rules"]
        assert rule["host"] in tls["hosts"]
        assert tls["secretName"]
        [path] = rule["http"]["paths"]
        backend = path["backend"]["service"]
        [service] = [s for s in of_kind("Service") if s["metadata"]["name"] == backend["name"]]
        [port] = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]["number"]]
        assert container_port(backend["name"], port["targetPort"]) == 50055  # the signed downloads

        [patch] = [p for p in edge_patches() if p["metadata"]["name"] == "registry-svc"]
        [container] = patch["spec"]["template"]["spec"]["containers"]
        base_url = {e["name"]: e["value"] for e in container["env"]}["MODELYARD_REGISTRY_PUBLIC_URL"]
        url = urlsplit(
            UrlSigner(Ed25519Key.generate()).mint(
                "v-1", "0" * 64, "edge-1", datetime.now(UTC) + timedelta(minutes=5), base_url
            )
        )
        assert (url.scheme, url.hostname) == ("https", rule["host"])
        assert path["pathType"] == "Prefix"
        assert url.path.startswith(path["path"])

    def test_trainer_workers_may_reach_the_ingress_their_download_urls_then_name(self) -> None:
        [policy] = [d for d in edge_manifests() if d["kind"] == "NetworkPolicy"]
        assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "trainer-worker"}}
        [rule] = policy["spec"]["egress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 443}]

    @pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl renders the component")
    def test_the_base_renders_with_the_component(self, tmp_path: Path) -> None:
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(
            # kustomize takes only relative paths
            yaml.safe_dump(
                {"resources": [os.path.relpath(K8S, overlay)], "components": [os.path.relpath(EDGE, overlay)]}
            )
        )
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        names = {(d["kind"], d["metadata"]["name"]) for d in docs}
        assert {("Service", "deploy-svc-edge"), ("Ingress", "registry-downloads")} <= names
        [registry] = [d for d in docs if (d["kind"], d["metadata"]["name"]) == ("Deployment", "registry-svc")]
        [container] = registry["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MODELYARD_REGISTRY_PUBLIC_URL"].startswith("https://")
        assert env["MODELYARD_REGISTRY_SIGNING_KEY"] is None  # the patch merged, kept the rest
