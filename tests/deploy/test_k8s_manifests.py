"""deploy/k8s guarded in CI: every manifest parses, every pod is locked down, images are pinned,
the namespace denies by default, Kafka needs TLS, SCRAM users and ACLs, each service connects to
PostgreSQL as its own role, which owns that service's schemas alone, each event signing key is mounted
only into its own service's pods, every pod may reach the services it dials, and the image installs
every package. registry-svc's own guards: test_registry_manifests.py; deploy-svc's and the edge
overlay's: test_deploy_manifests.py."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings

from modelyard_dataset.config import DatasetSettings
from modelyard_deploy.config import DeploySettings
from modelyard_job.config import JobSettings
from modelyard_registry.config import RegistrySettings
from modelyard_trainer.config import TrainerSettings
from tests.deploy.k8s_manifests import (
    K8S,
    ROOT,
    Manifest,
    acls_of,
    config_map,
    containers,
    effective_env,
    egress_of,
    env_of,
    env_secrets,
    ingress_of,
    kustomization,
    manifests,
    of_kind,
    service_deployment,
)

RELAY_USERS = {
    "dataset": "dataset-svc",
    "job": "job-svc",
    "trainer": "trainer-svc",
    "registry": "registry-svc",
    "deploy": "deploy-svc",
}
# Each service Deployment, its database role and the settings that name its schemas.
DATABASE_ROLES: dict[str, tuple[str, type[BaseSettings]]] = {
    "dataset-svc": ("modelyard_dataset", DatasetSettings),
    "job-svc": ("modelyard_job", JobSettings),
    "trainer-svc": ("modelyard_trainer", TrainerSettings),
    "registry-svc": ("modelyard_registry", RegistrySettings),
    "deploy-svc": ("modelyard_deploy", DeploySettings),
}
ROLES_SQL = K8S / "database-roles.sql"


def test_every_manifest_parses_and_kustomize_applies_every_file() -> None:
    for doc in manifests():
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        assert doc["metadata"].get("name"), doc
    listed = set(kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert len(of_kind("Deployment")) == 6


class TestPods:
    def test_the_pod_runs_as_non_root_under_runtime_default_seccomp_without_an_api_token(
        self, deployment: Manifest
    ) -> None:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False

    def test_every_container_is_locked_down(self, deployment: Manifest) -> None:
        for container in containers(deployment):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]
            assert not context.get("privileged", False), container["name"]

    def test_tmp_is_a_writable_empty_dir_and_every_mount_has_its_volume(self, deployment: Manifest) -> None:
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(deployment):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]
            assert set(mounts.values()) <= volumes.keys()

    def test_the_pod_talks_to_kafka_as_its_own_user_over_tls(self, deployment: Manifest) -> None:
        env = {e["name"]: e for c in containers(deployment) for e in c.get("env", [])}
        user = env["MODELYARD_KAFKA_USERNAME"]["value"]
        assert user in {u["metadata"]["name"] for u in of_kind("KafkaUser")}
        assert env["MODELYARD_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }
        config = of_kind("ConfigMap")[0]["data"]
        assert config["MODELYARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")

    def test_the_pod_has_its_grpc_certificate_and_the_ca(self, deployment: Manifest) -> None:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert secrets["grpc-tls"] == f"{name}-grpc-tls"
        assert secrets["kafka-ca"] == "modelyard-cluster-ca-cert"
        assert of_kind("ConfigMap")[0]["data"]["MODELYARD_TLS_CA_FILE"].startswith("/etc/modelyard/grpc-tls/")

    def test_grpc_probes_speak_tls_through_the_exec_probe(self, deployment: Manifest) -> None:
        for container in containers(deployment):
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    assert "grpc" not in container[probe]  # Kubernetes' grpc probe is plaintext only
                    command = container[probe]["exec"]["command"]
                    if "ports" in container:
                        assert command[:3] == ["python", "-m", "modelyard_grpc.probe"]
                    else:  # a trainer worker serves nothing: the probe reads the file its loop touches
                        assert command[:4] == [
                            "python",
                            "-m",
                            "modelyard_trainer.worker.liveness",
                            _alive(container),
                        ]

    def test_a_worker_touches_its_liveness_file_on_a_writable_volume(self, deployment: Manifest) -> None:
        pod = deployment["spec"]["template"]["spec"]
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in containers(deployment):
            if "ports" not in container:
                mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in scratch]
                assert any(_alive(container).startswith(f"{path}/") for path in mounts)

    @pytest.mark.parametrize("name", sorted(DATABASE_ROLES))
    def test_a_service_exposes_the_ports_its_settings_listen_on(self, name: str) -> None:
        settings = DATABASE_ROLES[name][1]
        listens = {
            f.default
            for field, f in settings.model_fields.items()
            if field.endswith(("_grpc_port", "_http_port"))
        }
        [container] = service_deployment(name)["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert set(ports.values()) == listens
        [service] = [s for s in of_kind("Service") if s["metadata"]["name"] == name]
        assert {(p["port"], ports[p["targetPort"]]) for p in service["spec"]["ports"]} == {
            (n, n) for n in listens
        }


def _pinned(reference: str) -> bool:
    if "@sha256:" in reference:
        return True
    name, _, tag = reference.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_every_image_is_pinned() -> None:
    rewritten = {i["name"]: i for i in kustomization()["images"]}
    for image in kustomization()["images"]:
        assert image.get("digest") or image.get("newTag") not in (None, "", "latest"), image
    for deployment in of_kind("Deployment"):
        for container in containers(deployment):
            image = container["image"]
            assert image in rewritten or _pinned(image), f"{container['name']}: {image}"
    for cluster in of_kind("Cluster"):
        assert _pinned(cluster["spec"]["imageName"])
    for kafka in of_kind("Kafka"):
        assert kafka["spec"]["kafka"]["version"]  # Strimzi picks the image of this exact version


def test_unpinned_image_references_are_recognized() -> None:
    assert not _pinned("ghcr.io/modelyard/modelyard")
    assert not _pinned("ghcr.io/modelyard/modelyard:latest")
    assert not _pinned("registry:5000/modelyard")
    assert _pinned("registry:5000/modelyard:0.1.0")
    assert _pinned("ghcr.io/modelyard/modelyard@sha256:" + "0" * 64)


class TestNetworkPolicies:
    def test_the_namespace_denies_all_ingress_and_egress_by_default(self) -> None:
        deny = [
            p
            for p in of_kind("NetworkPolicy")
            if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert len(deny) == 1

    def test_trainer_svc_admits_only_job_svc_and_the_trainer_workers(self) -> None:
        policy = next(
            p for p in of_kind("NetworkPolicy") if p["metadata"]["name"] == "grpc-ingress-trainer-svc"
        )
        [rule] = policy["spec"]["ingress"]
        assert rule["from"] == [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "job-svc"}}},
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "trainer-worker"}}},
        ]
        assert rule["ports"] == [{"protocol": "TCP", "port": 50052}]

    def test_trainer_workers_reach_trainer_svc_and_never_postgres(self) -> None:
        reached = egress_of("trainer-worker")
        assert ("trainer-svc", 50052) in reached
        assert not {target for target, _ in reached} & {"modelyard-pg", "*"}
        postgres = next(p for p in of_kind("NetworkPolicy") if p["metadata"]["name"] == "postgres")
        admitted = str(postgres["spec"]["ingress"])
        assert "trainer-worker" not in admitted

    @pytest.mark.parametrize("name", sorted(DATABASE_ROLES))
    def test_a_service_reaches_postgres_and_kafka_and_both_admit_it(self, name: str) -> None:
        assert {("modelyard-pg", 5432), ("kafka", 9093)} <= egress_of(name)
        assert (name, 5432) in ingress_of("modelyard-pg")
        [kafka] = of_kind("Kafka")
        [listener] = kafka["spec"]["kafka"]["listeners"]
        assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}} in listener[
            "networkPolicyPeers"
        ]

    def test_every_service_target_a_pod_dials_is_a_service_port_it_may_reach(
        self, deployment: Manifest
    ) -> None:
        app = deployment["metadata"]["name"]
        services = {svc["metadata"]["name"]: svc for svc in of_kind("Service")}
        targets = {n: v for n, v in effective_env(deployment).items() if n.endswith("_SVC_TARGET")}
        for name, target in targets.items():
            host, _, port = target.rpartition(":")
            assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, name
            assert (host, int(port)) in egress_of(app), name
            assert ingress_of(host) & {(app, int(port)), ("*", int(port))}, name


class TestTrainerWorker:
    """Workers append reports through trainer-svc: no database credentials, no signing key."""

    def test_the_worker_holds_no_database_credentials_and_no_signing_key(self) -> None:
        worker = service_deployment("trainer-worker")
        env = env_of(worker)
        secrets = env_secrets(worker)
        assert (
            not {"DATABASE_URL", "MODELYARD_DATABASE_URL", "PGPASSWORD", "MODELYARD_EVENT_SIGNING_KEY"}
            & env.keys()
        )
        assert not {s for s in secrets if s.startswith(("modelyard-pg-", "modelyard-events-"))}
        assert env["MODELYARD_TRAINER_SVC_TARGET"]["value"] == "trainer-svc:50052"


class TestBearerTokens:
    """No pod can mint a token: services pin the issuer's public key; callers mount their own token."""

    def test_no_pod_holds_a_token_signing_key_or_a_shared_secret(self, deployment: Manifest) -> None:
        names = {e["name"] for c in containers(deployment) for e in c.get("env", [])}
        secrets = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in containers(deployment)
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert not {"MODELYARD_TOKEN_SIGNING_KEY", "MODELYARD_AUTH_SECRET"} & names
        assert "modelyard-auth" not in secrets

    def test_services_pin_the_issuers_public_key(self) -> None:
        [config] = [m for m in of_kind("ConfigMap") if m["metadata"]["name"] == "modelyard-config"]
        assert config["data"]["MODELYARD_TOKEN_PUBLIC_KEYS"].startswith("[")

    @pytest.mark.parametrize(
        ("name", "subject_note"),
        [
            ("job-svc", "job-svc"),
            ("trainer-svc", "trainer-svc"),
            ("dataset-svc", "dataset-svc"),
            ("registry-svc", "registry-svc"),
            ("deploy-svc", "deploy-svc"),
            ("trainer-worker", "pool"),
        ],
    )
    def test_a_caller_reads_its_own_token_from_its_own_secret(self, name: str, subject_note: str) -> None:
        caller = service_deployment(name)
        env = {e["name"]: e for c in containers(caller) for e in c.get("env", [])}
        mounts = {m["name"]: m for c in containers(caller) for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in caller["spec"]["template"]["spec"]["volumes"]}
        path = env["MODELYARD_TOKEN_FILE"]["value"]
        assert path == f"{mounts['own-token']['mountPath']}/token"
        assert volumes["own-token"]["secret"]["secretName"] == f"modelyard-token-{name}"
        if subject_note == "pool":  # the workers share the token of subject trainer-worker
            assert env["MODELYARD_TRAINER_ID"]["value"] == "trainer-worker/$(POD_NAME)"


class TestKafka:
    def test_every_listener_is_tls_with_scram_users_and_acls_are_enforced(self) -> None:
        [kafka] = of_kind("Kafka")
        listeners = kafka["spec"]["kafka"]["listeners"]
        assert listeners
        for listener in listeners:
            assert listener["tls"] is True, listener["name"]
            assert listener["authentication"] == {"type": "scram-sha-512"}, listener["name"]
        assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
        assert "userOperator" in kafka["spec"]["entityOperator"]

    def test_only_a_service_writes_its_own_events_topic(self) -> None:
        writers: dict[str, set[str]] = {}
        for user in of_kind("KafkaUser"):
            assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
            for acl in user["spec"]["authorization"]["acls"]:
                resource = acl["resource"]
                if "Write" in acl["operations"] or "All" in acl["operations"]:
                    assert resource["type"] == "topic"
                    assert resource["patternType"] == "literal", "no wildcard writes"
                    writers.setdefault(resource["name"], set()).add(user["metadata"]["name"])
        for source, relay_user in RELAY_USERS.items():
            assert writers[f"modelyard.{source}.events"] == {relay_user}
        assert all(
            topic.endswith(".dlq")
            for topic in writers.keys() - {f"modelyard.{s}.events" for s in RELAY_USERS}
        )

    def test_a_consumer_may_write_the_dead_letter_topic_of_every_topic_it_reads_in_a_group(self) -> None:
        for user in of_kind("KafkaUser"):
            name = user["metadata"]["name"]
            if not acls_of(name, "group"):
                continue  # the workers read assigned partitions, without a group and a DLQ
            granted = acls_of(name)
            read = {topic for topic, op in granted if op == "Read" and not topic.endswith(".dlq")}
            assert {(f"{topic}.dlq", "Write") for topic in read} <= granted, name

    def test_trainer_workers_only_read_the_job_topic(self) -> None:
        [worker] = [u for u in of_kind("KafkaUser") if u["metadata"]["name"] == "trainer-worker"]
        assert worker["spec"]["authorization"]["acls"] == [
            {
                "resource": {"type": "topic", "name": "modelyard.job.events", "patternType": "literal"},
                "operations": ["Describe", "Read"],
            }
        ]


def schema_owners(sql: str) -> dict[str, str]:
    """The (schema, role) table of database-roles.sql, each schema listed once."""
    pairs = re.findall(r"\['([a-z_]+)',\s*'([a-z_]+)'\]", sql)
    owners = dict(pairs)
    assert len(owners) == len(pairs), f"a schema listed twice: {pairs}"
    return owners


def schemas_of(settings: type[BaseSettings]) -> set[str]:
    """Every schema a service creates: the defaults of its `*_schema` settings."""
    return {str(f.default) for name, f in settings.model_fields.items() if name.endswith("_schema")}


class TestDatabaseRoles:
    @pytest.mark.parametrize("name", sorted(DATABASE_ROLES))
    def test_a_service_connects_as_its_own_role_never_as_the_owner(self, name: str) -> None:
        role = DATABASE_ROLES[name][0]
        secret = f"modelyard-pg-{name.removesuffix('-svc')}"
        deployment = service_deployment(name)
        # Its own role's secret, never the owner's (modelyard-pg-app) nor another service's.
        assert {s for s in env_secrets(deployment) if s.startswith("modelyard-pg-")} == {secret}
        env = env_of(deployment)
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "password"}
        url = urlsplit(env["DATABASE_URL"]["value"])
        assert (url.username, url.password) == (role, None)  # libpq takes the password from PGPASSWORD
        assert (url.hostname, url.path) == ("modelyard-pg-rw.modelyard", "/modelyard")
        [managed] = [r for r in of_kind("Cluster")[0]["spec"]["managed"]["roles"] if r["name"] == role]
        assert managed["passwordSecret"] == {"name": secret}

    def test_the_service_roles_are_login_roles_with_no_other_privilege(self) -> None:
        [cluster] = of_kind("Cluster")
        roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
        assert roles.keys() == {role for role, _ in DATABASE_ROLES.values()}
        for role in roles.values():
            assert role.get("ensure", "present") == "present"
            assert role["login"] is True
            for privilege in ("superuser", "createdb", "createrole", "replication", "bypassrls"):
                assert role.get(privilege, False) is False, (role["name"], privilege)
            assert not role.get("inRoles"), role["name"]

    def test_the_cluster_runs_the_roles_sql_at_bootstrap(self) -> None:
        [cluster] = of_kind("Cluster")
        refs = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQLRefs"]
        assert refs == {"configMapRefs": [{"name": "modelyard-pg-roles", "key": ROLES_SQL.name}]}
        [generator] = [g for g in kustomization()["configMapGenerator"] if g["name"] == "modelyard-pg-roles"]
        assert generator["files"] == [ROLES_SQL.name]
        assert generator["options"]["disableNameSuffixHash"] is True  # CNPG names it verbatim

    def test_the_sql_gives_every_schema_of_a_service_to_its_role_alone(self) -> None:
        sql = ROLES_SQL.read_text()
        owners = schema_owners(sql)
        for role, settings in DATABASE_ROLES.values():
            assert {schema for schema, owner in owners.items() if owner == role} == schemas_of(settings), role
        assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in sql
        assert "REVOKE ALL ON DATABASE %I FROM PUBLIC" in sql
        assert "REVOKE ALL ON SCHEMA %I FROM PUBLIC" in sql
        # Nothing is granted on a schema or its objects: each role reaches only what it owns.
        assert not re.search(r"GRANT [^;']*\bON (SCHEMA|ALL|TABLE|FUNCTION|SEQUENCE)", sql, re.IGNORECASE)

    def test_schema_owners_reads_the_table_and_refuses_a_schema_listed_twice(self) -> None:
        assert schema_owners("['a', 'ra'], ['b', 'rb']") == {"a": "ra", "b": "rb"}
        with pytest.raises(AssertionError):
            schema_owners("['a', 'ra'], ['a', 'rb']")


class TestSigningKeys:
    """Each event signing key lives only in the pods of the service that signs with it; everyone pins
    every source's public keys through the config map."""

    def test_an_event_signing_key_is_mounted_only_into_its_own_services_pods(
        self, deployment: Manifest
    ) -> None:
        own = f"modelyard-events-{deployment['metadata']['name'].removesuffix('-svc')}"
        assert {s for s in env_secrets(deployment) if s.startswith("modelyard-events-")} <= {own}
        key = env_of(deployment).get("MODELYARD_EVENT_SIGNING_KEY")
        if key is not None:
            assert key["valueFrom"]["secretKeyRef"] == {"name": own, "key": "signing-key"}

    def test_every_source_is_pinned(self) -> None:
        assert json.loads(config_map()["MODELYARD_EVENT_PUBLIC_KEYS"]).keys() == RELAY_USERS.keys()


def test_the_image_installs_every_package_the_makefile_installs() -> None:
    """deploy/docker/Dockerfile installs the packages one by one: a new one must be added there too
    (all but the dev platform, libs/devstack, which starts embedded servers for tests and the demo)."""
    [packages] = re.findall(r"^PACKAGES := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    installed = re.findall(r"-e (\S+)", (ROOT / "deploy" / "docker" / "Dockerfile").read_text())
    assert installed == [p for p in packages.split() if p != "libs/devstack"]


def _alive(container: Manifest) -> str:
    """The liveness file a worker container's env names (the root filesystem is read-only)."""
    [path] = [e["value"] for e in container["env"] if e["name"] == "MODELYARD_TRAINER_LIVENESS_FILE"]
    return str(path)
