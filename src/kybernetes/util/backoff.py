"""Exponential, jittered, capped back-off.

    b = Backoff(initial=0.2, maximum=30.0)
    delay = b.next()      # 0.2 (+ jitter), then 0.4, 0.8 ... capped at 30
    b.reset()             # after a success

``exponential_delay`` and ``jittered`` are pure helpers the workqueue rate limiters reuse.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def exponential_delay(attempt: int, initial: float, maximum: float, factor: float = 2.0) -> float:
    """``initial * factor**attempt`` capped at ``maximum`` (attempt 0 is the first retry)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # Avoid float overflow for huge attempt counts: once past the cap, stay there.
    delay = initial
    for _ in range(attempt):
        delay *= factor
        if delay >= maximum:
            return maximum
    return min(delay, maximum)


def jittered(delay: float, jitter: float, rng: random.Random | None = None) -> float:
    """``delay`` stretched by a random factor in ``[1, 1 + jitter)`` (client-go ``wait.Jitter``)."""
    if jitter <= 0:
        return delay
    r = (rng or random).random()
    return delay * (1.0 + jitter * r)


@dataclass
class Backoff:
    """Stateful back-off for one retry loop. Not shared between loops."""

    initial: float = 0.2
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: random.Random | None = field(default=None, repr=False)
    attempts: int = 0

    def peek(self) -> float:
        """The un-jittered delay the next ``next()`` is based on."""
        return exponential_delay(self.attempts, self.initial, self.maximum, self.factor)

    def next(self) -> float:
        """The delay before the next attempt (jittered, never above ``maximum``)."""
        d = min(jittered(self.peek(), self.jitter, self.rng), self.maximum)
        self.attempts += 1
        return d

    def reset(self) -> None:
        self.attempts = 0
