"""What a classifier outputs: a class label as it appeared in the training data."""

from __future__ import annotations

# Integer labels stay integers (digits 0-9); any other label column is read as text.
ClassLabel = int | str
