"""Identifiers of datasets and samples, and the checks on what users name them.

A sample's id is derived from its dataset and its content hash, so the same bytes uploaded twice into
one dataset are one sample (duplicate detection), and a sample id names its dataset.
"""

from __future__ import annotations

import json
import re
import uuid

from modelyard_events.domain_errors import InvalidArgument

ENVIRONMENTS = ("dev", "staging", "production")
NAME_MAX_CHARS = 200
AI_MODULE_MAX_CHARS = 64
_SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_REQUEST_NAMESPACE = uuid.UUID("0c7e4a52-3d6b-4f0e-8d1c-5b9a2e7f6c31")
_SAMPLE_HASH_CHARS = 24


def dataset_id_for(org_id: str, request_id: str | None) -> str:
    """A new dataset id; the same (organization, request id) always gives the same one."""
    if request_id:
        # A JSON pair, not "org/request": org "a/b" with request "c" must not meet org "a" with "b/c".
        name = json.dumps([org_id, request_id])
        return f"ds-{uuid.uuid5(_REQUEST_NAMESPACE, name).hex[:20]}"
    return f"ds-{uuid.uuid4().hex[:20]}"


def sample_id_for(dataset_id: str, sha256: str) -> str:
    """`<dataset_id>:<first 24 hex digits of the content hash>` (96 bits: collisions are not a concern)."""
    return f"{dataset_id}:{sha256[:_SAMPLE_HASH_CHARS]}"


def dataset_of_sample(sample_id: str) -> str:
    """The dataset a sample id names; InvalidArgument when it is not a sample id."""
    dataset_id, colon, digest = sample_id.partition(":")
    if not (colon and dataset_id.startswith("ds-") and re.fullmatch(r"[0-9a-f]{24}", digest)):
        raise InvalidArgument(
            "sample_id", f"{sample_id!r} is not a sample id; they look like ds-…:<24 hex digits>"
        )
    return dataset_id


def check_dataset_fields(name: str, ai_module: str, environment: str) -> dict[str, str]:
    """What is wrong with a new dataset's name, AI module and environment (field → what to fix)."""
    problems: dict[str, str] = {}
    if not name.strip() or len(name) > NAME_MAX_CHARS:
        problems["name"] = f"must have 1 to {NAME_MAX_CHARS} characters and not be blank; got {name!r}"
    if not (_SLUG.fullmatch(ai_module) and len(ai_module) <= AI_MODULE_MAX_CHARS):
        problems["ai_module"] = (
            "must be a slug: lowercase letters and digits, words joined by '-' or '_' "
            f"(e.g. defect-detector), at most {AI_MODULE_MAX_CHARS} characters; got {ai_module!r}"
        )
    if environment not in ENVIRONMENTS:
        problems["environment"] = f"must be one of {', '.join(ENVIRONMENTS)}; got {environment!r}"
    return problems
