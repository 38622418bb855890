import random

import pytest

from kybernetes.util.backoff import Backoff, exponential_delay, jittered


@pytest.mark.parametrize("attempt,expected", [
    pytest.param(0, 0.005, id="first"),
    pytest.param(1, 0.01, id="second"),
    pytest.param(10, 5.12, id="tenth"),
    pytest.param(18, 1000.0, id="capped"),
    pytest.param(10_000, 1000.0, id="huge-no-overflow"),
])
def test_exponential_delay(attempt: int, expected: float) -> None:
    assert exponential_delay(attempt, 0.005, 1000.0) == pytest.approx(expected)


def test_negative_attempt_rejected() -> None:
    with pytest.raises(ValueError):
        exponential_delay(-1, 1, 2)


def test_jitter_stays_in_range() -> None:
    rng = random.Random(7)
    values = [jittered(1.0, 0.5, rng) for _ in range(200)]
    assert all(1.0 <= v < 1.5 for v in values)
    assert len(set(values)) > 100
    assert jittered(2.0, 0.0) == 2.0


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(initial=0.1, maximum=1.0, jitter=0.0)
    assert [b.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    b.reset()
    assert b.next() == pytest.approx(0.1)


def test_backoff_jitter_never_exceeds_cap() -> None:
    b = Backoff(initial=1.0, maximum=2.0, jitter=1.0, rng=random.Random(1))
    assert all(b.next() <= 2.0 for _ in range(50))
