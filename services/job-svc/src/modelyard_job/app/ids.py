"""Identifiers job-svc hands out: short enough to type, unique enough to never collide in practice."""

from __future__ import annotations

import json
import uuid

_REQUEST_NAMESPACE = uuid.UUID("6f1d8f7e-3c1b-4e55-9a43-7f0b2d3e9c10")


def job_id_for(org_id: str, request_id: str | None) -> str:
    """A new job id; the same (organization, request id) always gives the same one (idempotent create)."""
    if request_id:
        # A JSON pair, not "org/request": org "a/b" with request "c" must not meet org "a" with "b/c".
        return f"job-{uuid.uuid5(_REQUEST_NAMESPACE, json.dumps([org_id, request_id])).hex[:20]}"
    return f"job-{uuid.uuid4().hex[:20]}"


def dispatch_id_for(job_id: str, attempt: int) -> str:
    """A fresh dispatch (lease) id; it names the trainer's report stream, so it is never reused."""
    return f"dsp-{job_id.removeprefix('job-')[:8]}-{attempt}-{uuid.uuid4().hex[:12]}"
