"""The command line's options and environment: targets, token, pinned keys, home, throttle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edge_support import OTHER_KEY, REGISTRY_KEY

from modelyard_edge.cli import UsageError, build_parser, config_from, main
from modelyard_grpc.tokens import FileToken

KEYS_ENV = {
    "MODELYARD_REGISTRY_PUBLIC_KEYS": json.dumps([REGISTRY_KEY.public_text()]),
    "MODELYARD_TOKEN": "t",
}


def test_defaults() -> None:
    config = config_from(build_parser().parse_args(["--server-id", "edge-7"]), KEYS_ENV)
    assert (config.deploy_target, config.registry_target) == ("127.0.0.1:50056", "127.0.0.1:50054")
    assert config.home == (Path(".modelyard") / "edge" / "edge-7").absolute()
    assert config.environment == "production"
    assert config.registry_public_keys == (REGISTRY_KEY.public_text(),)
    assert config.token == "t"
    assert config.max_download_bytes_per_s is None
    assert config.resolved_platform.count("/") == 1


def test_options_win_over_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token\n")
    env = {**KEYS_ENV, "MODELYARD_DEPLOY_TARGET": "deploy:1", "MODELYARD_REGISTRY_SVC_TARGET": "registry:2"}
    options = build_parser().parse_args(
        [
            "--server-id=edge-7",
            "--deploy-target=d:9",
            f"--token-file={token_file}",
            f"--registry-public-key={OTHER_KEY.public_text()}",
            f"--home={tmp_path / 'h'}",
            "--max-download-bytes-per-s=1000",
            "--platform=linux/arm64",
        ]
    )
    config = config_from(options, env)
    assert (config.deploy_target, config.registry_target) == ("d:9", "registry:2")
    assert isinstance(config.token, FileToken)
    assert config.token() == "file-token"
    assert config.registry_public_keys == (OTHER_KEY.public_text(),)
    assert config.home == tmp_path / "h"
    assert config.max_download_bytes_per_s == 1000
    assert config.resolved_platform == "linux/arm64"


def test_without_a_pinned_key_the_agent_does_not_start() -> None:
    with pytest.raises(UsageError, match="no registry public key is pinned"):
        config_from(build_parser().parse_args(["--server-id", "e"]), {"MODELYARD_TOKEN": "t"})


def test_without_a_token_the_agent_does_not_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MODELYARD_TOKEN", "MODELYARD_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELYARD_REGISTRY_PUBLIC_KEYS", json.dumps([REGISTRY_KEY.public_text()]))
    assert main(["--server-id", "e"]) == 2
    assert "no edge token" in capsys.readouterr().err


def test_probe_inputs_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--probe-inputs: no such file"):
        config_from(
            build_parser().parse_args(["--server-id", "e", f"--probe-inputs={tmp_path / 'absent.npy'}"]),
            KEYS_ENV,
        )


def test_a_key_that_is_not_one_is_refused_at_start() -> None:
    with pytest.raises(UsageError, match="a pinned registry public key is not one"):
        config_from(
            build_parser().parse_args(["--server-id", "e", "--registry-public-key", "nope"]), KEYS_ENV
        )
