"""A refusal shown to a person names the service, never the internal address it was called at."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc import aio

from modelyard_console.gateway import refusal_of

TARGET = "job-svc.internal.example:50051"


def _error(code: grpc.StatusCode, details: str) -> aio.AioRpcError:
    return aio.AioRpcError(code, aio.Metadata(), aio.Metadata(), details=details)


def test_an_unreachable_service_is_named_without_its_address(caplog: pytest.LogCaptureFixture) -> None:
    details = f"failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.4.7:50051 ({TARGET})"
    with caplog.at_level(logging.WARNING, logger="modelyard_console.gateway"):
        refusal = refusal_of(_error(grpc.StatusCode.UNAVAILABLE, details), "job-svc", TARGET)
    assert refusal.status == "UNAVAILABLE"
    assert refusal.message.startswith("job-svc is unreachable")
    assert "50051" not in refusal.message
    assert "10.0.4.7" not in refusal.message
    assert TARGET in caplog.text  # the operator still finds the detail in the log
    assert "10.0.4.7" in caplog.text


def test_a_service_that_answers_unavailable_itself_is_shown_as_it_said() -> None:
    refusal = refusal_of(_error(grpc.StatusCode.UNAVAILABLE, "store busy"), "job-svc", TARGET)
    assert (refusal.status, refusal.message) == ("UNAVAILABLE", "store busy")
