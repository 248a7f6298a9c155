"""Reconnection policy: exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Retry connecting with exponentially growing, jittered delays.

    Pass it as ``Client(..., reconnect=Backoff())``: the client then connects
    in the background, and reconnects after a loss.

    Parameters
    ----------
    initial
        Delay before the second attempt, in seconds; must be > 0. (Zero
        would never grow, since each delay is the previous one times
        ``factor``: the client would retry as fast as it can, about a
        thousand connects per second against a server that drops it.)
    maximum
        Upper bound of a delay, in seconds.
    factor
        Each delay is the previous one times ``factor`` (until ``maximum``).
    jitter
        Relative random spread of each delay: 0.1 means ±10 %, so many
        clients do not retry in lockstep.
    max_attempts
        Give up after this many failed attempts in a row; None retries
        forever.

    Raises
    ------
    ValueError
        If a value is out of range, such as ``initial=0``.
    """

    initial: float = 0.1
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.1
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ValueError(
                f"initial={self.initial!r} must be > 0: a zero delay never grows, "
                "so the client would retry in a tight loop"
            )
        if not self.maximum >= self.initial:
            raise ValueError(f"maximum={self.maximum!r} must be >= initial")
        if not self.factor >= 1:
            raise ValueError(f"factor={self.factor!r} must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter={self.jitter!r} must be in [0, 1]")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts={self.max_attempts!r} must be None or >= 1")

    def delays(self) -> Iterator[float]:
        """Yield the delay to wait after each failed attempt, forever."""
        delay = self.initial
        while True:
            spread = random.uniform(-self.jitter, self.jitter)
            yield max(0.0, min(delay, self.maximum) * (1 + spread))
            delay = min(delay * self.factor, self.maximum)
