"""Cron parsing and next-fire computation (pure)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kybernetes.controllers.cron import CronError, parse

UTC = dt.UTC


def t(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(("expr", "after", "want"), [
    pytest.param("*/1 * * * *", t(2025, 1, 1, 10, 0, 30), t(2025, 1, 1, 10, 1), id="every-minute"),
    pytest.param("* * * * *", t(2025, 1, 1, 10, 1), t(2025, 1, 1, 10, 2), id="strictly-after"),
    pytest.param("*/15 9-17 * * mon-fri", t(2025, 1, 6, 9, 7), t(2025, 1, 6, 9, 15), id="step-range-names"),
    pytest.param("*/15 9-17 * * mon-fri", t(2025, 1, 10, 17, 50), t(2025, 1, 13, 9, 0), id="skip-weekend"),
    pytest.param("0 0 1 * mon", t(2025, 1, 1, 0, 0), t(2025, 1, 6, 0, 0), id="dom-or-dow"),
    pytest.param("0 0 */2 * mon", t(2025, 1, 1, 0, 0), t(2025, 1, 3, 0, 0), id="stepped-star-is-not-star"),
    pytest.param("0 0 * * mon", t(2025, 1, 1, 0, 0), t(2025, 1, 6, 0, 0), id="star-dom-means-and"),
    pytest.param("0 12 13 * 5", t(2025, 1, 1), t(2025, 1, 3, 12), id="friday-or-13th"),
    pytest.param("30 4 1,15 * *", t(2025, 1, 2), t(2025, 1, 15, 4, 30), id="list"),
    pytest.param("5/20 * * * *", t(2025, 1, 1, 0, 6), t(2025, 1, 1, 0, 25), id="n-slash-step"),
    pytest.param("0 0 1 JAN *", t(2025, 3, 1), t(2026, 1, 1), id="month-name-uppercase"),
    pytest.param("@yearly", t(2025, 3, 1), t(2026, 1, 1), id="yearly"),
    pytest.param("@annually", t(2025, 3, 1), t(2026, 1, 1), id="annually"),
    pytest.param("@monthly", t(2025, 3, 1, 0, 0), t(2025, 4, 1), id="monthly"),
    pytest.param("@weekly", t(2025, 1, 1), t(2025, 1, 5), id="weekly-sunday"),
    pytest.param("@daily", t(2025, 1, 1, 0, 0), t(2025, 1, 2), id="daily"),
    pytest.param("@midnight", t(2025, 1, 1, 5), t(2025, 1, 2), id="midnight"),
    pytest.param("@hourly", t(2025, 1, 1, 5, 1), t(2025, 1, 1, 6), id="hourly"),
    pytest.param("0 0 29 2 *", t(2025, 1, 1), t(2028, 2, 29), id="leap-day"),
    pytest.param("? ? ? ? ?", t(2025, 1, 1), t(2025, 1, 1, 0, 1), id="question-marks"),
])
def test_next(expr: str, after: dt.datetime, want: dt.datetime) -> None:
    assert parse(expr).next(after) == want


def test_never_matching_schedule_has_no_next() -> None:
    assert parse("0 0 30 2 *").next(t(2025, 1, 1)) is None


@pytest.mark.parametrize(("expr", "tz", "after", "want"), [
    pytest.param("0 3 * * *", "Europe/Berlin", t(2025, 1, 1, 0, 0), t(2025, 1, 1, 2, 0), id="winter"),
    pytest.param("0 3 * * *", "Europe/Berlin", t(2025, 7, 1, 0, 0), t(2025, 7, 1, 1, 0), id="summer"),
    pytest.param("30 2 * * *", "Europe/Berlin", t(2025, 3, 29, 12), t(2025, 3, 31, 0, 30), id="dst-gap-skipped"),
    pytest.param("30 2 * * *", "Europe/Berlin", t(2025, 10, 25, 12), t(2025, 10, 26, 0, 30), id="dst-repeat-once"),
    pytest.param("30 2 * * *", "Europe/Berlin", t(2025, 10, 26, 0, 30), t(2025, 10, 27, 1, 30), id="dst-repeat-not-twice"),
])
def test_next_in_time_zone(expr: str, tz: str, after: dt.datetime, want: dt.datetime) -> None:
    assert parse(expr, tz).next(after) == want


@pytest.mark.parametrize("expr", [
    pytest.param("* * * *", id="four-fields"),
    pytest.param("* * * * * *", id="six-fields"),
    pytest.param("60 * * * *", id="minute-too-big"),
    pytest.param("* 24 * * *", id="hour-too-big"),
    pytest.param("* * 0 * *", id="dom-zero"),
    pytest.param("* * * 13 *", id="month-13"),
    pytest.param("* * * * 7", id="dow-7"),
    pytest.param("5-1 * * * *", id="backwards-range"),
    pytest.param("*/0 * * * *", id="zero-step"),
    pytest.param("1-2-3 * * * *", id="two-hyphens"),
    pytest.param("x * * * *", id="junk"),
    pytest.param("@every 5m", id="every-not-supported"),
    pytest.param("@reboot", id="unknown-macro"),
    pytest.param("TZ=UTC * * * * *", id="tz-prefix"),
    pytest.param("", id="empty"),
])
def test_invalid(expr: str) -> None:
    with pytest.raises(CronError):
        parse(expr)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError):
        parse("* * * * *", "Mars/Olympus")


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    single = st.integers(lo, hi).map(str)
    rng = st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.tuples(st.sampled_from(["*", str(lo)]), st.integers(1, 7)).map(lambda p: f"{p[0]}/{p[1]}")
    part = st.one_of(st.just("*"), single, rng, step)
    return st.lists(part, min_size=1, max_size=3).map(",".join)


EXPRS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)).map(" ".join)
TIMES = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2090, 1, 1),
                     timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(EXPRS, TIMES, st.sampled_from([None, "America/New_York", "Asia/Kolkata"]))
def test_next_is_after_and_matches(expr: str, after: dt.datetime, tz: str | None) -> None:
    sched = parse(expr, tz)
    nxt = sched.next(after)
    assert nxt is not None          # day-of-month <= 28 always exists
    assert nxt > after
    assert sched.matches(nxt)
    # nothing fires in between (checked minute by minute over a bounded window)
    probe = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    for _ in range(min(120, int((nxt - probe).total_seconds() // 60))):
        assert not sched.matches(probe)
        probe += dt.timedelta(minutes=1)
