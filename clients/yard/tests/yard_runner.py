"""Runners of the yard CLI pointed at fake services (shared by conftest's fixtures and the tests).

A module of its own, not conftest: two test folders (yard's, the console's) have a conftest.py, and
`from conftest import …` would get whichever pytest loaded first.
"""

from __future__ import annotations

from collections.abc import Callable

from typer.testing import CliRunner, Result

from modelyard_cli.main import app

TOKEN = "token-of-the-tests"

Yard = Callable[..., Result]
"""The `yard` fixture: yard("jobs", "list", env={...}) runs the CLI against the fake job-svc."""


def runner_for(targets: dict[str, str]) -> Yard:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        environment: dict[str, str | None] = {
            "MODELYARD_JOB_SVC_TARGET": None,
            "MODELYARD_DATASET_SVC_TARGET": None,
            "MODELYARD_REGISTRY_SVC_TARGET": None,
            "MODELYARD_DEPLOY_TARGET": None,
            "MODELYARD_REGISTRY_PUBLIC_KEYS": None,
            **targets,
            "MODELYARD_TOKEN": TOKEN,
            "MODELYARD_TOKEN_SIGNING_KEY": None,
            "MODELYARD_SUBJECT": None,
            "MODELYARD_ORG": None,
            "MODELYARD_TLS_CA_FILE": None,
            "MODELYARD_TLS_SERVER_NAME": None,
            "COLUMNS": "200",
            **(env or {}),
        }
        return runner.invoke(app, list(args), env=environment, input=input)

    return invoke
