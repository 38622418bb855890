"""Go durations: ``time.Duration.String`` (``10s``, ``1m20s``, ``5m0s``, ``1.5s``, ``250ms``), the
form Kubernetes messages and API fields use, and ``parse_seconds`` for reading them back (flags
such as ``--ttl 24h``, annotations, metric windows)."""

from __future__ import annotations

import re
from fractions import Fraction

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text: object) -> float | None:
    """Seconds in a Go duration string (``"30s"``, ``"1h30m"``, ``"-1.5s"``, ``"0"``); None when
    it is not one."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for m in _PART.finditer(body):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return sign * total if pos == len(body) and pos > 0 else None


def go_duration(seconds: float) -> str:
    """A Go ``time.Duration`` string (``10s``, ``1m30s``, ``1.5s``, ``250ms``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(Fraction(ns, size)) + unit
    h, rest = divmod(ns, 3600 * 10**9)
    mi, rest = divmod(rest, 60 * 10**9)
    out = sign
    if h:
        out += f"{h}h"
    if h or mi:
        out += f"{mi}m"
    return out + _trim(Fraction(rest, 10**9)) + "s"


def _trim(v: Fraction) -> str:
    whole, frac = divmod(v.numerator, v.denominator)
    if not frac:
        return str(whole)
    digits = str(round(Fraction(frac, v.denominator) * 10**9)).rjust(9, "0").rstrip("0")
    return f"{whole}.{digits}"
