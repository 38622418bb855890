"""Go's ``time.Duration.String`` (``10s``, ``1m20s``, ``5m0s``, ``1.5s``, ``250ms``): the form
Kubernetes messages and API fields use for durations."""

from __future__ import annotations

from fractions import Fraction


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
