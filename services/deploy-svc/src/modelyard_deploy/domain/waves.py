"""How a rollout's servers are split into waves: a canary first, then the rest (or the sizes asked)."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.deploy import MAX_WAVES

CANARY_SIZE = 1


def plan_waves(server_count: int, wave_sizes: Sequence[int] | None = None) -> list[int]:
    """The size of each wave, summing to `server_count`.

    Default: one canary server, then everyone else. Given sizes are used in order; what they leave
    over forms one last wave; a size larger than what is left is cut to it (and later sizes dropped).
    """
    if server_count < 1:
        raise InvalidArgument("server_ids", "a rollout needs at least one server")
    sizes = list(wave_sizes) if wave_sizes else [CANARY_SIZE]
    small = [size for size in sizes if size < 1]
    if small:
        raise InvalidArgument("wave_sizes", f"every wave needs at least one server; got {small[0]}")
    if len(sizes) > MAX_WAVES:
        raise InvalidArgument("wave_sizes", f"at most {MAX_WAVES} waves; got {len(sizes)}")
    planned: list[int] = []
    left = server_count
    for size in sizes:
        if left == 0:
            break
        planned.append(min(size, left))
        left -= planned[-1]
    if left:
        if len(planned) == MAX_WAVES:
            raise InvalidArgument(
                "wave_sizes", f"{MAX_WAVES} waves leave {left} servers over; make the waves larger"
            )
        planned.append(left)
    return planned
