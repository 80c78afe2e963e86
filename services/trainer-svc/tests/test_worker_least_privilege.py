"""Workers hold no database credentials and no signing key; serve refuses to start without them (and
without its own token for job-svc)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from worker_samples import settings_for

import modelyard_trainer.worker
from modelyard_trainer import main as trainer_main

WORKER_PACKAGE = Path(modelyard_trainer.worker.__file__).parent
# What opening the trainer store or signing its log would take.
STORE_MODULES = ("modelyard_events.db", "modelyard_events.store.postgres", "sqlalchemy", "psycopg")
SIGNING_CALLS = ("head_signer", "HeadSigner", "database_url", "store_url")


def test_no_worker_module_opens_a_database_or_signs() -> None:
    problems = []
    for path in sorted(WORKER_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                problems += [f"{path.name} imports {n}" for n in names if n.startswith(STORE_MODULES)]
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                problems += [f"{path.name} uses {name}"] if name in SIGNING_CALLS else []
    assert problems == []


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ({"database_url": None}, "DATABASE_URL"),
        ({"event_signing_key": None}, "MODELYARD_EVENT_SIGNING_KEY"),
        ({"token_file": None}, "MODELYARD_TOKEN_FILE"),
    ],
)
def test_serve_refuses_to_start_without_the_store_its_key_or_its_token(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    missing: dict[str, None],
    named: str,
) -> None:
    monkeypatch.setattr(trainer_main, "TrainerSettings", lambda: settings_for(tmp_path, **missing))

    with caplog.at_level(logging.ERROR):
        assert trainer_main.main(["serve"]) == 2

    assert f"{named} is required by serve" in caplog.text
