"""The order batches are drawn in: a pure function of (seed, epoch), so a resumed epoch replays it exactly."""

from __future__ import annotations

import hashlib

import torch


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps in one pass over `samples`; the last batch may be smaller."""
    return -(-samples // batch_size)


def batch_order(seed: int, epoch_index: int, samples: int) -> torch.Tensor:
    """A permutation of range(samples) (int64, CPU) that depends on nothing but its arguments.

    Its own generator, not torch's global RNG, so that skipping the first
    `step` batches after a resume yields the same remaining batches.
    """
    key = hashlib.sha256(f"modelyard batch order {seed} {epoch_index}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1)
    return torch.randperm(samples, generator=generator)


def batch_size_at(step: int, batch_size: int, samples: int) -> int:
    """Rows in batch `step` (0-based), known without touching the device."""
    return min(batch_size, samples - step * batch_size)
