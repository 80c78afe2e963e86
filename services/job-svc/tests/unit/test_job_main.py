"""`python -m modelyard_job` with bad key settings: one line saying what to fix, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelyard_grpc.testing import TEST_TOKEN_PUBLIC_KEYS

BASE = {
    "PATH": os.environ.get("PATH", ""),
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never reached: the keys are checked first
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MODELYARD_TOKEN_PUBLIC_KEYS": '["x"]'}, "MODELYARD_TOKEN_PUBLIC_KEYS) is not base64"),
        ({"MODELYARD_TOKEN_PUBLIC_KEYS": TEST_TOKEN_PUBLIC_KEYS}, "MODELYARD_EVENT_SIGNING_KEY is not set"),
    ],
    ids=["bad-token-key", "no-signing-key"],
)
def test_bad_key_settings_stop_job_svc_with_a_line_that_says_what_to_set(
    env: dict[str, str], says: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelyard_job"], env=BASE | env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "bad settings: " in result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
