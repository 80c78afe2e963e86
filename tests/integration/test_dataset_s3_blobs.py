"""dataset-svc with the S3-compatible blob store: an upload, a version and a download go through S3.

The S3 side is a real S3-compatible HTTP server (moto's), so boto3, multipart uploads and keys are
exercised the way MinIO or AWS would see them; dataset-svc runs as its own process with its own schemas.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from modelyard.v1 import datasets_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import free_port
from modelyard_events.schemas.manifest import parse_manifest
from tests.integration.dataset_client import DatasetClient, digit_files

pytestmark = pytest.mark.integration
BUCKET = "modelyard-datasets"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys()).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture
def s3_dataset_svc(services: Platform, s3_endpoint: str) -> Iterator[str]:
    port, suffix = free_port(), uuid.uuid4().hex[:8]
    env = {
        **CREDENTIALS,
        "MODELYARD_DATASET_GRPC_PORT": str(port),
        "MODELYARD_STORE_SCHEMA": f"dataset_s3_{suffix}",
        "MODELYARD_VIEWS_SCHEMA": f"dataset_s3_views_{suffix}",
        "MODELYARD_TOPIC_NAMESPACE": f"s3-{suffix}",
        "MODELYARD_BLOB_STORE": "s3",
        "MODELYARD_S3_ENDPOINT_URL": s3_endpoint,
        "MODELYARD_S3_BUCKET": BUCKET,
        "MODELYARD_S3_REGION": "us-east-1",
        "MODELYARD_BLOB_ROOT": str(services.workdir / f"s3-staging-{suffix}"),
        **services.signing_env("dataset"),
        # Its own token: it reads job-svc's and registry-svc's logs (which versions were used).
        "MODELYARD_TOKEN_FILE": str(
            services.token_file("dataset-svc", ("auditor",), ("job-svc", "registry-svc"))
        ),
    }
    target = f"127.0.0.1:{port}"
    services.start_service("dataset-svc-s3", "modelyard_dataset", [], target, env)
    yield target
    services.stop("dataset-svc-s3")


async def test_samples_and_manifests_live_in_the_bucket_and_come_back_verified(
    services: Platform, s3_dataset_svc: str, s3_endpoint: str, fresh_org: str
) -> None:
    async with DatasetClient.connect(s3_dataset_svc, services.token()) as datasets:
        files = digit_files(4, [0, 1])
        dataset = await datasets.build(fresh_org, files, ["0", "1"])
        version = await datasets.stub.PublishVersion(
            datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id)
        )
        manifest_reply = await datasets.stub.GetManifest(
            datasets_pb2.VersionRef(dataset_id=dataset.dataset_id, version=version.version)
        )
        manifest = parse_manifest(manifest_reply.manifest_json, version.manifest_sha256)
        chunks = datasets.stub.DownloadSamples(
            datasets_pb2.DownloadSamplesRequest(dataset_id=dataset.dataset_id, version=version.version)
        )
        downloaded: dict[str, bytes] = {}
        current = ""
        async for chunk in chunks:
            current = chunk.sha256 or current
            downloaded[current] = downloaded.get(current, b"") + chunk.data
    keys = {
        item["Key"].rsplit("/", 1)[-1]
        for item in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_keys())
        .list_objects_v2(Bucket=BUCKET)
        .get("Contents", [])
    }
    assert {hashlib.sha256(data).hexdigest() for _, data, _ in files} <= keys
    assert version.manifest_sha256 in keys
    assert set(downloaded) == {s.sha256 for s in manifest.samples}
    assert all(hashlib.sha256(data).hexdigest() == sha for sha, data in downloaded.items())
