"""Standard cron schedules (pure): parsing and next-fire computation, as CronJobs use them.

    sched = parse("*/15 9-17 * * mon-fri")
    sched.next(dt.datetime(2025, 1, 6, 9, 7, tzinfo=dt.UTC))     # -> 2025-01-06 09:15 UTC
    parse("0 3 * * *", "Europe/Berlin").next(t)                  # fires at 03:00 Berlin time

The grammar is the five-field one the upstream CronJob controller accepts (robfig/cron's
``ParseStandard``): minute, hour, day of month, month, day of week; each field a comma list of
``*``/``?``, ``N``, ``A-B``, each optionally followed by ``/step`` (``N/step`` means ``N-max/step``);
month and weekday names (``jan``, ``mon``, case-insensitive); the macros ``@yearly``, ``@annually``,
``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly``.

Day matching follows robfig/cron: when either the day-of-month or the day-of-week field is a bare
``*``/``?``, a day must match both fields; otherwise matching either one is enough (so
``0 0 1 * mon`` fires on the 1st *and* on every Monday). ``*/2`` is not "bare".

Times are computed in the schedule's zone (``zoneinfo``): local times skipped by a DST jump never
fire, and a repeated local time fires once (its first occurrence).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
SEARCH_YEARS = 5   # like robfig/cron: give up when nothing matches within five years


class CronError(ValueError):
    """The schedule or time zone cannot be parsed."""


@dataclass(frozen=True)
class _Bounds:
    lo: int
    hi: int
    names: dict[str, int]


_FIELDS = (_Bounds(0, 59, {}), _Bounds(0, 23, {}), _Bounds(1, 31, {}), _Bounds(1, 12, MONTHS),
           _Bounds(0, 6, WEEKDAYS))


def _value(text: str, b: _Bounds) -> int:
    low = text.lower()
    if low in b.names:
        return b.names[low]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def _parse_part(part: str, b: _Bounds) -> tuple[frozenset[int], bool]:
    """One comma-separated item -> (values, whether it was a bare star)."""
    rng, slash, step_text = part.partition("/")
    star = False
    if rng in ("*", "?"):
        lo, hi, star = b.lo, b.hi, True
    else:
        bounds = rng.split("-")
        if len(bounds) > 2:
            raise CronError(f"too many hyphens: {part}")
        lo = _value(bounds[0], b)
        hi = _value(bounds[1], b) if len(bounds) == 2 else lo
        if slash and len(bounds) == 1:
            hi = b.hi
    step = 1
    if slash:
        if not step_text.isdigit():
            raise CronError(f"failed to parse int from {step_text}")
        step = int(step_text)
        if step == 0:
            raise CronError(f"step of range should be a positive number: {part}")
        if step > 1:
            star = False
    if lo < b.lo:
        raise CronError(f"beginning of range ({lo}) below minimum ({b.lo}): {part}")
    if hi > b.hi:
        raise CronError(f"end of range ({hi}) above maximum ({b.hi}): {part}")
    if lo > hi:
        raise CronError(f"beginning of range ({lo}) beyond end of range ({hi}): {part}")
    return frozenset(range(lo, hi + 1, step)), star


def _parse_field(text: str, b: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        vals, s = _parse_part(part, b)
        values |= vals
        star = star or s
    return frozenset(values), star


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; ``next(t)`` is the first fire time strictly after ``t``."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]        # 0 = Sunday
    dom_star: bool = False
    dow_star: bool = False
    tz: dt.tzinfo = dt.UTC

    def day_matches(self, d: dt.date) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def matches(self, t: dt.datetime) -> bool:
        """Whether ``t`` (any zone) is a fire time, to the minute."""
        local = t.astimezone(self.tz)
        return (local.second == 0 and local.microsecond == 0 and local.minute in self.minutes
                and local.hour in self.hours and local.month in self.months
                and self.day_matches(local.date()))

    def next(self, t: dt.datetime) -> dt.datetime | None:
        """The first fire time after ``t`` (an aware datetime), in UTC; None if there is none
        within ``SEARCH_YEARS`` years (e.g. ``0 0 30 2 *``)."""
        if t.tzinfo is None:
            raise ValueError("next() needs an aware datetime")
        start_utc = t.astimezone(dt.UTC)
        local = start_utc.astimezone(self.tz)
        day = local.date()
        end = day.replace(year=day.year + SEARCH_YEARS) if not (day.month == 2 and day.day == 29) \
            else day.replace(year=day.year + SEARCH_YEARS, day=28)
        hours = sorted(self.hours)
        minutes = sorted(self.minutes)
        one_day = dt.timedelta(days=1)
        floor = local.replace(tzinfo=None) - dt.timedelta(hours=3)   # cheap pre-filter (DST-safe)
        while day <= end:
            if day.month not in self.months:
                # jump to the first day of the next month
                day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
                continue
            if self.day_matches(day):
                found = self._first_on(day, hours, minutes, start_utc, floor)
                if found is not None:
                    return found
            day += one_day
        return None

    def _first_on(self, day: dt.date, hours: list[int], minutes: list[int],
                  after: dt.datetime, floor: dt.datetime) -> dt.datetime | None:
        for h in hours:
            if dt.datetime(day.year, day.month, day.day, h, 59) < floor:
                continue
            for m in minutes:
                naive = dt.datetime(day.year, day.month, day.day, h, m)
                if naive < floor:
                    continue
                aware = naive.replace(tzinfo=self.tz, fold=0)
                utc = aware.astimezone(dt.UTC)
                # a local time inside a DST gap does not round-trip: it never happens
                if utc.astimezone(self.tz).replace(tzinfo=None) != naive:
                    continue
                if utc > after:
                    return utc
        return None


def load_zone(name: str | None) -> dt.tzinfo:
    """The zone named by a CronJob's ``spec.timeZone`` (None/"" or "UTC": UTC)."""
    if not name or name == "UTC":
        return dt.UTC
    if name == "Local":
        raise CronError(f"invalid timeZone: {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"invalid timeZone: {name!r}: {e}") from None


def parse(expr: str, tz: str | dt.tzinfo | None = None) -> CronSchedule:
    """Parse a five-field cron expression or @macro, to be evaluated in ``tz`` (default UTC)."""
    zone = tz if isinstance(tz, dt.tzinfo) else load_zone(tz)
    text = expr.strip()
    if not text:
        raise CronError("empty spec string")
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise CronError("TZ or CRON_TZ in the schedule is not supported; use spec.timeZone")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = MACROS[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    parsed = [_parse_field(f, b) for f, b in zip(fields, _FIELDS, strict=True)]
    return CronSchedule(minutes=parsed[0][0], hours=parsed[1][0], days=parsed[2][0],
                        months=parsed[3][0], weekdays=parsed[4][0],
                        dom_star=parsed[2][1], dow_star=parsed[4][1], tz=zone)
