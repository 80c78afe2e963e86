"""Pause and cancel requests, sent from any thread to a running training."""

from __future__ import annotations

import threading


class TrainingControl:
    """Thread-safe flags the engine reads before every optimizer step.

    A request is never lost and never undone: once set, the run stops at the
    next step boundary (cancel wins over pause when both are set).
    """

    def __init__(self) -> None:
        self._pause = threading.Event()
        self._cancel = threading.Event()

    def request_pause(self) -> None:
        """Ask the run to save a checkpoint at the next step boundary and return `Paused`."""
        self._pause.set()

    def request_cancel(self) -> None:
        """Ask the run to stop at the next step boundary and return `Cancelled`."""
        self._cancel.set()

    @property
    def pause_requested(self) -> bool:
        """True once `request_pause` has been called."""
        return self._pause.is_set()

    @property
    def cancel_requested(self) -> bool:
        """True once `request_cancel` has been called."""
        return self._cancel.is_set()
