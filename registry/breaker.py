"""A small circuit breaker — one per federation peer, one for the read replica: after ``threshold`` failures in a row
the other side is not asked for ``reset_after`` seconds (callers fail at once, or go elsewhere, instead of each waiting
out a timeout); then one trial call is let through, and its outcome closes the circuit again or re-opens it."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from registry.errors import CircuitOpen


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class Breaker:
    def __init__(
        self, *, threshold: int = 3, reset_after: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self._clock() - self._opened_at >= self.reset_after:
            return BreakerState.half_open
        return BreakerState.open

    def before_call(self) -> bool:
        """Raise CircuitOpen unless a call may go out now (closed, or the one trial call when half-open); True when
        this call is that trial."""
        state = self.state
        if state is BreakerState.open or (state is BreakerState.half_open and self._trial_running):
            raise CircuitOpen("it failed repeatedly a moment ago")
        if state is BreakerState.half_open:
            self._trial_running = True
            return True
        return False

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def abandoned(self, *, trial: bool) -> None:
        """A call ended without an outcome (cancelled, or an error that says nothing of the other side): it counts
        neither way. When it was the trial (``before_call`` said so), the next call may be one; a call that went out
        before the circuit opened leaves the trial under way alone."""
        if trial:
            self._trial_running = False

    def failed(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at = self._clock()
