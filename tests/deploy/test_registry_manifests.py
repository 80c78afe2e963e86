"""deploy/k8s for registry-svc: it reads the workers' runs read-only, keeps its blobs under its own
prefix, holds the only registry signing key, and is reached on gRPC 50054 and HTTP 50055."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from modelyard_registry.config import RegistrySettings
from modelyard_trainer.config import TrainerSettings
from tests.deploy.k8s_manifests import (
    Manifest,
    acls_of,
    config_map,
    effective_env,
    egress_of,
    env_of,
    env_secrets,
    ingress_of,
    of_kind,
    runs_mount,
    service_deployment,
)


class TestRunsVolume:
    """The workers write their runs to the shared volume; registry-svc only reads finished artifacts."""

    def test_the_runs_volume_is_written_by_the_workers_and_read_only_in_registry_svc(self) -> None:
        [claim] = [c for c in of_kind("PersistentVolumeClaim") if c["metadata"]["name"] == "modelyard-runs"]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        worker, registry = service_deployment("trainer-worker"), service_deployment("registry-svc")
        worker_mount = runs_mount(worker)
        assert worker_mount["mountPath"] == effective_env(worker)["MODELYARD_TRAINER_ROOT"]
        assert not worker_mount.get("readOnly", False)
        registry_mount = runs_mount(registry)
        assert registry_mount["readOnly"] is True
        assert json.loads(effective_env(registry)["MODELYARD_ARTIFACT_ROOTS"]) == [
            registry_mount["mountPath"]
        ]
        assert registry_mount["mountPath"] == worker_mount["mountPath"]  # the file:// URIs the workers report
        volumes = registry["spec"]["template"]["spec"]["volumes"]
        [volume] = [
            v for v in volumes if v.get("persistentVolumeClaim", {}).get("claimName") == "modelyard-runs"
        ]
        assert volume["persistentVolumeClaim"]["readOnly"] is True
        mounting = {d["metadata"]["name"] for d in of_kind("Deployment") if runs_mount(d, required=False)}
        assert mounting == {"trainer-worker", "registry-svc"}


class TestBlobsAndDownloads:
    """Its artifacts sit in the bucket under a prefix of their own; the URLs it signs reach port 50055."""

    def test_registry_svc_keeps_its_blobs_in_s3_under_its_own_prefix_with_its_own_credentials(self) -> None:
        registry, dataset = service_deployment("registry-svc"), service_deployment("dataset-svc")
        env = effective_env(registry)
        assert env["MODELYARD_BLOB_STORE"] == "s3"
        assert env["MODELYARD_S3_BUCKET"]
        assert env["MODELYARD_S3_PREFIX"] == RegistrySettings.model_fields["s3_prefix"].default
        assert env["MODELYARD_S3_PREFIX"] != effective_env(dataset)["MODELYARD_S3_PREFIX"]
        assert {s for s in env_secrets(registry) if s.startswith("modelyard-s3")} == {"modelyard-s3-registry"}
        assert "modelyard-s3-registry" not in env_secrets(dataset)

    def test_download_urls_point_at_the_http_port_and_bind_every_interface(self) -> None:
        env = effective_env(service_deployment("registry-svc"))
        url = urlsplit(env["MODELYARD_REGISTRY_PUBLIC_URL"])
        assert (url.hostname, url.port) == (
            "registry-svc",
            RegistrySettings.model_fields["registry_http_port"].default,
        )
        assert env["MODELYARD_REGISTRY_HTTP_BIND"] == "0.0.0.0"


class TestRegistryNetwork:
    """Anyone may call it (TLS and tokens, or signed URLs, still apply); it reaches only what it needs."""

    def test_registry_svc_admits_grpc_and_downloads_from_anyone(self) -> None:
        assert ingress_of("registry-svc") == {("*", 50054), ("*", 50055)}

    def test_registry_svc_reaches_postgres_kafka_job_svc_and_its_bucket_only(self) -> None:
        assert egress_of("registry-svc") == {
            ("modelyard-pg", 5432),
            ("kafka", 9093),
            ("job-svc", 50051),  # ReadEvents
            ("*", 443),  # the S3-compatible blob store, outside the cluster
        }

    def test_trainer_workers_reach_registry_svc_for_download_urls_and_downloads(self) -> None:
        assert {("registry-svc", 50054), ("registry-svc", 50055)} <= egress_of("trainer-worker")


class TestRegistryKafka:
    """It publishes the registry topic and consumes the job topic; job-svc consumes the registry topic."""

    def test_registry_svc_reads_its_own_and_the_job_topic_and_job_svc_reads_the_registry_topic(self) -> None:
        registry = acls_of("registry-svc")
        assert {t for t, op in registry if op == "Read"} == {
            "modelyard.registry.events",
            "modelyard.job.events",
        }
        assert {t for t, op in registry if op == "Write"} == {
            "modelyard.registry.events",
            "modelyard.registry.events.dlq",
            "modelyard.job.events.dlq",
        }
        assert ("registry-svc.", "Read") in acls_of("registry-svc", "group")  # its groups, by prefix
        assert {("modelyard.registry.events", "Read"), ("modelyard.registry.events.dlq", "Write")} <= acls_of(
            "job-svc"
        )
        topics = {t["spec"]["topicName"] for t in of_kind("KafkaTopic")}
        assert {"modelyard.registry.events", "modelyard.registry.events.dlq"} <= topics


class TestRegistrySigningKey:
    """Only registry-svc signs manifests and URLs; trainer workers pin its public key."""

    def test_only_registry_svc_holds_the_registry_signing_key(self, deployment: Manifest) -> None:
        key = env_of(deployment).get("MODELYARD_REGISTRY_SIGNING_KEY")
        secrets = env_secrets(deployment) | {
            v["secret"]["secretName"]
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if "secret" in v
        }
        if deployment["metadata"]["name"] == "registry-svc":
            assert key is not None
            assert key["valueFrom"]["secretKeyRef"] == {
                "name": "modelyard-registry-signing",
                "key": "signing-key",
            }
        else:
            assert key is None
            assert "modelyard-registry-signing" not in secrets
        assert "MODELYARD_REGISTRY_SIGNING_KEY" not in config_map()

    def test_trainer_workers_pin_the_registry_public_key_from_the_config_map(self) -> None:
        assert isinstance(json.loads(config_map()["MODELYARD_REGISTRY_PUBLIC_KEYS"]), list)
        assert "registry_public_keys" in TrainerSettings.model_fields  # the setting that key fills
        worker = service_deployment("trainer-worker")
        assert "MODELYARD_REGISTRY_PUBLIC_KEYS" in effective_env(worker)
