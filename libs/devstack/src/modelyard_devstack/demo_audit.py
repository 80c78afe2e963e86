"""`make demo`, part 8: what an auditor sees, with an auditor's token and nothing else.

The lineage of the model the fleet runs, from an edge server up to the samples and who labeled and
reviewed them; who approved and released it (the audit view); the version as the log said it was
before its approval (time travel); then every service's chain and signatures verified through
ReadEvents, and every read model rebuilt from the logs and compared with the live one. The last
two must come out clean, or the demo fails.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

AuditorYard = Callable[..., int]


def walk_audit(
    yard_as_auditor: AuditorYard, org: str, released_version_id: str, before_approval: datetime
) -> None:
    """Lineage, the audit view, time travel, verify and replay (see the module's docstring)."""
    print("\n8. Lineage and audit, as an auditor (a token with the auditor role, no database access)")
    print("\n   where the model on edge-1 comes from (first page; --all follows every sample):")
    yard_as_auditor("lineage", "edge_server:edge-1", "--up", "--page-size", "40")
    print("\n   who approved and released it:")
    for event_type in ("ModelApproved", "ModelReleased"):
        yard_as_auditor("audit", "events", "--type", event_type, "--page-size", "5")
    print("\n   the version as the registry's log said it was before it was approved:")
    at = before_approval.isoformat()
    yard_as_auditor("audit", "as-of", "model-version", released_version_id, "--at", at)
    print("\n   what the organization uses of its plan, projected from the logs:")
    yard_as_auditor("usage", "--org", org)
    print("\n   every service's log: each hash recomputed, each link and signed head checked")
    yard_as_auditor("audit", "verify")
    print("\n   every read model rebuilt from the logs, compared row by row with the live one")
    yard_as_auditor("audit", "replay")
