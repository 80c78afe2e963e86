"""The Fleet page: each server's running and intended versions, drift with its reasons, the deployment
in progress, and each rollout's waves."""

from __future__ import annotations

from console_fakes import FakeGateway
from console_pages import sign_in
from starlette.testclient import TestClient

from modelyard.v1 import deploy_pb2


def test_the_fleet_shows_drift_deployment_progress_and_waves(
    browser: TestClient, gateway: FakeGateway
) -> None:
    server = deploy_pb2.EdgeServer(
        server_id="edge-7", org_id="acme", environment="production", online=True, drift=True,
        drift_reasons=["digit-reader runs 1.0.0, should run 1.1.0"],
        running=[deploy_pb2.RunningModel(ai_module="digit-reader", semantic_version="1.0.0")],
        intended=[deploy_pb2.RunningModel(ai_module="digit-reader", semantic_version="1.1.0")],
        active_deployment=deploy_pb2.Deployment(
            server_id="edge-7", ai_module="digit-reader", semantic_version="1.1.0",
            status=deploy_pb2.DEPLOYMENT_STATUS_DOWNLOADING, progress_percent=40,
        ),
    )  # fmt: skip
    rollout = deploy_pb2.Rollout(
        rollout_id="r-1", ai_module="digit-reader", semantic_version="1.1.0",
        state=deploy_pb2.ROLLOUT_STATE_RUNNING, server_count=3,
        waves=[
            deploy_pb2.WaveProgress(wave=1, size=1, completed=1),
            deploy_pb2.WaveProgress(wave=2, size=2, in_progress=1),
        ],
    )  # fmt: skip
    gateway.deploy_service.servers.append(server)
    gateway.deploy_service.rollouts.append(rollout)
    sign_in(browser)
    page = browser.get("/fleet").text
    assert "digit-reader runs 1.0.0, should run 1.1.0" in page
    assert 'data-state="drift"' in page
    assert 'data-state="downloading"' in page
    assert 'value="40"' in page
    assert "wave 1: 1/1 done; wave 2: 0/2 done, 1 in progress" in page
    assert 'data-state="running"' in page
