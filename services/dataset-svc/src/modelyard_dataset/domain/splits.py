"""Train/val/test splits of a version: stratified, seeded, and a pure function of their inputs.

The split depends only on the set of (sample id, stratum) pairs, the seed and the fractions: not on
the order the samples come in, the Python process (no `hash()`), or the platform. Within each stratum
(the class, for classification) the samples are ordered by SHA-256 of "<seed>:<sample id>" — a seeded
shuffle that a reader can recompute with any SHA-256 tool — and then the first test-size samples go to
test, the next val-size to val, the rest to train.

Sizes per stratum of n samples: test = round(n × test_fraction), val = round(n × val_fraction),
rounding halves up, test_fraction = 1 − train − val. When a stratum has 3 or more samples, val and test
each get at least one sample when their fraction is above 0 (so every class is seen in evaluation); a
split's size then differs from n × fraction by less than 1 for val and test, and by less than 2 for
train (less than 1 when no minimum applied).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence

from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.datasets import SplitName

MIN_STRATUM_FOR_HOLDOUT = 3
_FRACTION_TOLERANCE = 1e-9  # 0.7 + 0.3 may sum to 1.0000000000000002


def checked_fractions(train_fraction: float, val_fraction: float) -> tuple[float, float]:
    """The fractions unchanged when 0 < train ≤ 1, 0 ≤ val and train + val ≤ 1; else InvalidArgument."""
    if not (math.isfinite(train_fraction) and 0 < train_fraction <= 1):
        raise InvalidArgument("split", f"train_fraction must be in (0, 1]; got {train_fraction}")
    if not (math.isfinite(val_fraction) and val_fraction >= 0):
        raise InvalidArgument("split", f"val_fraction must be ≥ 0; got {val_fraction}")
    if train_fraction + val_fraction > 1 + _FRACTION_TOLERANCE:
        raise InvalidArgument(
            "split",
            f"train_fraction + val_fraction must be ≤ 1 (test gets the rest); "
            f"got {train_fraction} + {val_fraction} = {train_fraction + val_fraction:g}",
        )
    return train_fraction, val_fraction


def assign_splits(
    samples: Sequence[tuple[str, str | None]], seed: int, train_fraction: float, val_fraction: float
) -> dict[str, SplitName]:
    """Each sample id's split, stratified by the pair's stratum (None: all in one stratum).

    A sample id given twice with different strata is a caller error (ValueError).
    """
    checked_fractions(train_fraction, val_fraction)
    assignment: dict[str, SplitName] = {}
    for ids in _strata(samples).values():
        ordered = sorted(ids, key=lambda sample_id: _shuffle_key(seed, sample_id))
        _train, val, test = split_sizes(len(ordered), train_fraction, val_fraction)
        for position, sample_id in enumerate(ordered):
            assignment[sample_id] = "test" if position < test else "val" if position < test + val else "train"
    return assignment


def split_sizes(n: int, train_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes of a stratum of n samples, by the rule in the module docstring."""
    test_fraction = 1.0 - train_fraction - val_fraction
    test_fraction = test_fraction if test_fraction > _FRACTION_TOLERANCE else 0.0
    val, test = _round_half_up(n * val_fraction), _round_half_up(n * test_fraction)
    if n >= MIN_STRATUM_FOR_HOLDOUT:
        val = max(val, 1) if val_fraction > 0 else val
        test = max(test, 1) if test_fraction > 0 else test
    if val + test > n:  # only after a minimum: the other held-out split had rounded up to all of n
        if val >= test:
            val -= 1
        else:
            test -= 1
    return n - val - test, val, test


def _strata(samples: Sequence[tuple[str, str | None]]) -> dict[str | None, list[str]]:
    stratum_of: dict[str, str | None] = {}
    for sample_id, stratum in samples:
        if stratum_of.setdefault(sample_id, stratum) != stratum:
            raise ValueError(
                f"sample {sample_id!r} is given in two strata: {stratum_of[sample_id]!r}, {stratum!r}"
            )
    strata: dict[str | None, list[str]] = defaultdict(list)
    for sample_id, stratum in stratum_of.items():
        strata[stratum].append(sample_id)
    return strata


def _shuffle_key(seed: int, sample_id: str) -> tuple[str, str]:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest(), sample_id


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)
