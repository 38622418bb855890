"""Kubernetes resource quantities (``100m``, ``1.5``, ``2Gi``, ``1e3``): parse, compare, format.

    parse_quantity("1.5Gi")   -> Fraction(1610612736)     exact value (nano-rounded)
    to_canonical("1000m")     -> "1"                       upstream canonical string
    Quantity.parse("500Mi") + Quantity.parse("512Mi") -> Quantity("1Gi")
    milli_value("0.1")        -> 100

A quantity is ``<sign><digits>[.<digits>]<suffix>``; the suffix picks the *format* that the
canonical string keeps: binary SI (``Ki Mi Gi Ti Pi Ei``), decimal SI (``n u m "" k M G T P E``)
or decimal exponent (``e3``, ``E-6``). Values are rounded away from zero to nano precision
(``1e-10`` -> ``1n``), as upstream does. Canonical form:
- zero is ``0``;
- binary SI is kept only for integers with magnitude >= 1024, written with the largest power of
  1024 that divides the value (``1536Mi``, ``2Gi``); otherwise the value is shown as decimal SI;
- decimal forms use an exponent that is a multiple of 3 and an integer mantissa with as few
  trailing zeros as possible (``1000m`` -> ``1``, ``0.5`` -> ``500m``, ``1500`` -> ``1500``,
  ``1e3`` -> ``1e3``).
Invalid input raises ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {e: s for s, e in _DECIMAL.items()}
_BINARY_SUFFIX = {e // 10: s for s, e in _BINARY.items()}
_MAX_EXPONENT = 1000  # guards against "1e999999999" eating the CPU

_NUMBER_RE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)", re.DOTALL)
_EXP_RE = re.compile(r"[eE]([+-]?[0-9]+)")
FORMAT_ERROR = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _round_to_nano(value: Fraction) -> Fraction:
    scaled = value * 10**9
    if scaled.denominator == 1:
        return value
    whole = math.ceil(abs(scaled))  # away from zero, like inf.RoundUp
    return Fraction(whole if value > 0 else -whole, 10**9)


def _parse(text: str) -> tuple[Fraction, str]:
    m = _NUMBER_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(FORMAT_ERROR)
    sign, whole, frac, suffix = m.groups()
    frac = frac or ""
    if not whole and not frac:
        raise ValueError(FORMAT_ERROR)
    mantissa = Fraction(int((whole or "0") + frac), 10 ** len(frac))
    if suffix in _BINARY:
        value, fmt = mantissa * 2 ** _BINARY[suffix], BINARY_SI
    elif suffix in _DECIMAL:
        value, fmt = mantissa * Fraction(10) ** _DECIMAL[suffix], DECIMAL_SI
    else:
        em = _EXP_RE.fullmatch(suffix)
        if em is None:
            raise ValueError(f"unable to parse quantity's suffix: {FORMAT_ERROR}")
        exp = int(em.group(1))
        if abs(exp) > _MAX_EXPONENT:
            raise ValueError("quantity exponent is out of range")
        value, fmt = mantissa * Fraction(10) ** exp, DECIMAL_EXPONENT
    if sign == "-":
        value = -value
    return _round_to_nano(value), fmt


def _coerce(text: str | int | float) -> str:
    if isinstance(text, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(text, (int, float)):
        return repr(text)
    if not isinstance(text, str) or not text:
        raise ValueError(FORMAT_ERROR)
    return text


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a quantity string (JSON numbers are accepted too)."""
    return _parse(_coerce(text))[0]


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    """(mantissa, exponent) with exponent a multiple of 3 and the fewest trailing zeros."""
    mantissa = int(value * 10**9)  # exact: values are nano-rounded
    exp = -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exp += 1
    shift = exp % 3
    return mantissa * 10**shift, exp - shift


def format_quantity(value: Fraction, fmt: str = DECIMAL_SI) -> str:
    """Canonical string of ``value`` in format family ``fmt``."""
    value = _round_to_nano(Fraction(value))
    if value == 0:
        return "0"
    if fmt == BINARY_SI and value.denominator == 1 and abs(value) >= 1024:
        n, power = int(value), 0
        while n % 1024 == 0 and power < 6:
            n //= 1024
            power += 1
        return f"{n}{_BINARY_SUFFIX.get(power, '')}"
    mantissa, exp = _decimal_parts(value)
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}" if exp == 0 else f"{mantissa}e{exp}"
    suffix = _DECIMAL_SUFFIX.get(exp)
    return f"{mantissa}{suffix}" if suffix is not None else f"{mantissa}e{exp}"


def to_canonical(text: str | int | float) -> str:
    value, fmt = _parse(_coerce(text))
    return format_quantity(value, fmt)


def milli_value(text: str | int | float) -> int:
    """``ceil(q * 1000)`` (upstream ``MilliValue``): CPU in millicores."""
    return math.ceil(parse_quantity(text) * 1000)


def int_value(text: str | int | float) -> int:
    """``ceil(q)`` (upstream ``Value``): memory/storage in bytes."""
    return math.ceil(parse_quantity(text))


def is_valid(text: object) -> bool:
    try:
        _parse(_coerce(text))  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


@functools.total_ordering
@dataclass(frozen=True, eq=False)
class Quantity:
    """A value plus the format family its canonical string keeps. Compares by value."""

    value: Fraction
    format: str = DECIMAL_SI

    @classmethod
    def parse(cls, text: str | int | float) -> Quantity:
        value, fmt = _parse(_coerce(text))
        return cls(value, fmt)

    @classmethod
    def of(cls, value: int | Fraction, fmt: str = DECIMAL_SI) -> Quantity:
        return cls(_round_to_nano(Fraction(value)), fmt)

    def __str__(self) -> str:
        return format_quantity(self.value, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def _other(self, other: object) -> Fraction | None:
        if isinstance(other, Quantity):
            return other.value
        if isinstance(other, (int, Fraction)) and not isinstance(other, bool):
            return Fraction(other)
        return None

    def __eq__(self, other: object) -> bool:
        v = self._other(other)
        return NotImplemented if v is None else self.value == v

    def __lt__(self, other: object) -> bool:
        v = self._other(other)
        if v is None:
            return NotImplemented
        return self.value < v

    def __hash__(self) -> int:
        return hash(self.value)

    def _combine(self, other: object, sign: int) -> Quantity:
        v = self._other(other)
        if v is None:
            return NotImplemented
        fmt = self.format if self.value != 0 or not isinstance(other, Quantity) else other.format
        return Quantity(_round_to_nano(self.value + sign * v), fmt)

    def __add__(self, other: object) -> Quantity:
        return self._combine(other, 1)

    __radd__ = __add__

    def __sub__(self, other: object) -> Quantity:
        return self._combine(other, -1)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __mul__(self, factor: int) -> Quantity:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Quantity(self.value * factor, self.format)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.value != 0

    def milli_value(self) -> int:
        return math.ceil(self.value * 1000)

    def int_value(self) -> int:
        return math.ceil(self.value)

    def as_float(self) -> float:
        return float(self.value)


ZERO = Quantity(Fraction(0))
