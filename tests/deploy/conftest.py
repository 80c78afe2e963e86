"""The `deployment` fixture: each Deployment of deploy/k8s in turn."""

from __future__ import annotations

import pytest

from tests.deploy.k8s_manifests import Manifest, deployment_ids, service_deployment


@pytest.fixture(params=deployment_ids())
def deployment(request: pytest.FixtureRequest) -> Manifest:
    return service_deployment(request.param)
