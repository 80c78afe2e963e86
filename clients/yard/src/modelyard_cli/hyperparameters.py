"""Hyperparameters from the command line: `--params-file` (a JSON object), then `--param key=value`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2


class BadHyperparameter(ValueError):
    """A `--param` without `=`, or a params file that is not a JSON object: the message says which."""


def parse_value(text: str) -> Any:
    """The value as JSON when it parses (`0.01`, `3`, `true`, `[64, 32]`), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_param(assignment: str) -> tuple[str, Any]:
    """`lr=0.01` → ("lr", 0.01); `name=resnet` → ("name", "resnet")."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise BadHyperparameter(f"--param {assignment!r}: expected key=value (e.g. lr=0.01)")
    return key.strip(), parse_value(value)


def read_params_file(path: Path) -> dict[str, Any]:
    """The JSON object in `path`."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BadHyperparameter(f"--params-file {path}: {error}") from error
    if not isinstance(values, dict):
        raise BadHyperparameter(f"--params-file {path}: expected a JSON object of name → value")
    return values


def hyperparameters(params: Iterable[str], params_file: Path | None = None) -> struct_pb2.Struct:
    """The hyperparameters as a Struct: the file's values, overridden by each `--param` in order."""
    values = read_params_file(params_file) if params_file is not None else {}
    values.update(parse_param(p) for p in params)
    message = struct_pb2.Struct()
    message.update(values)
    return message
