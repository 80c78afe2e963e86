"""The model version lifecycle (seed 003, DESIGN §5): which moves exist, and the refusal for the rest.

draft → testing (an evaluation is requested) → approved (four eyes, every gate passing) → released
(current in an environment) → deprecated (final). A failed evaluation or a rejection sends the
version back to draft; approved may be deprecated without ever being released.
"""

from __future__ import annotations

from typing import Literal

from modelyard_events.domain_errors import IllegalTransition

Status = Literal["draft", "testing", "approved", "released", "deprecated"]
Move = Literal["evaluate", "record_evaluation", "approve", "reject", "release", "deprecate", "renumber"]

ALLOWED_FROM: dict[Move, frozenset[Status]] = {
    "evaluate": frozenset({"draft"}),
    "record_evaluation": frozenset({"testing"}),
    "approve": frozenset({"testing"}),
    "reject": frozenset({"testing", "approved"}),
    "release": frozenset({"approved", "released"}),
    "deprecate": frozenset({"approved", "released"}),
    "renumber": frozenset({"draft"}),
}

_WHAT_NEXT: dict[Status, str] = {
    "draft": "evaluate it (yard models evaluate) or renumber it",
    "testing": "wait for its evaluation, then approve or reject it",
    "approved": "release, reject or deprecate it",
    "released": "release it in another environment, roll back to it, or deprecate it",
    "deprecated": "nothing: deprecated is final; release another version instead",
}


def check_move(move: Move, version_id: str, semantic_version: str, status: Status) -> None:
    """IllegalTransition naming the state and what it allows, unless `move` is allowed from `status`."""
    allowed = ALLOWED_FROM[move]
    if status not in allowed:
        states = " or ".join(sorted(allowed))
        raise IllegalTransition(
            f"cannot {move.replace('_', ' ')} version {semantic_version} ({version_id}): it is {status}, "
            f"and {move.replace('_', ' ')} needs {states}; from {status} you can {_WHAT_NEXT[status]}"
        )
