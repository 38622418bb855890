"""Resource quantities: parsing, canonical form, arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kybernetes.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    Quantity,
    format_quantity,
    int_value,
    is_valid,
    milli_value,
    parse_quantity,
    to_canonical,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("100m", Fraction(1, 10), id="milli"),
        pytest.param("1.5", Fraction(3, 2), id="fraction"),
        pytest.param("2Gi", 2 * 2**30, id="gibi"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param("1E-3", Fraction(1, 1000), id="negative-exponent"),
        pytest.param("500Mi", 500 * 2**20, id="mebi"),
        pytest.param("1k", 1000, id="kilo"),
        pytest.param("0.1", Fraction(1, 10), id="point-one"),
        pytest.param("1n", Fraction(1, 10**9), id="nano"),
        pytest.param("1u", Fraction(1, 10**6), id="micro"),
        pytest.param("-2M", -2_000_000, id="negative"),
        pytest.param("+3", 3, id="plus-sign"),
        pytest.param(".5", Fraction(1, 2), id="leading-dot"),
        pytest.param("5.", 5, id="trailing-dot"),
        pytest.param("1Ei", 2**60, id="exbi"),
        pytest.param("1e-10", Fraction(1, 10**9), id="rounded-up-to-nano"),
        pytest.param("-1e-10", Fraction(-1, 10**9), id="rounded-away-from-zero"),
        pytest.param(2, 2, id="json-int"),
        pytest.param(0.25, Fraction(1, 4), id="json-float"),
    ],
)
def test_parse(text: str | int | float, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="letters"),
        pytest.param("1K", id="uppercase-k"),
        pytest.param("1.5.5", id="two-dots"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1Gb", id="bad-suffix"),
        pytest.param("1e", id="bare-e"),
        pytest.param(".", id="only-dot"),
        pytest.param("-", id="only-sign"),
        pytest.param("1\n", id="newline"),
        pytest.param("1e99999", id="huge-exponent"),
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)
    assert not is_valid(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("1000m", "1", id="milli-to-unit"),
        pytest.param("0.5", "500m", id="half"),
        pytest.param("1536Mi", "1536Mi", id="mebi-kept"),
        pytest.param("1.5Gi", "1536Mi", id="fractional-gibi"),
        pytest.param("1024Mi", "1Gi", id="mebi-to-gibi"),
        pytest.param("2048Ki", "2Mi", id="kibi-to-mebi"),
        pytest.param("0.5Gi", "512Mi", id="half-gibi"),
        pytest.param("0.1Ki", "102400m", id="binary-non-integer-is-decimal"),
        pytest.param("1023Ki", "1023Ki", id="kibi"),
        pytest.param("512", "512", id="small-int"),
        pytest.param("1000", "1k", id="kilo"),
        pytest.param("1500", "1500", id="no-fraction-in-mantissa"),
        pytest.param("1200000", "1200k", id="multiple-of-three"),
        pytest.param("1e3", "1e3", id="exponent-kept"),
        pytest.param("1E3", "1e3", id="exponent-lowercase"),
        pytest.param("1.5e3", "1500", id="exponent-zero"),
        pytest.param("1e-3", "1e-3", id="negative-exponent"),
        pytest.param("100m", "100m", id="milli"),
        pytest.param("0.1", "100m", id="tenth"),
        pytest.param("1e-10", "1e-9", id="below-nano"),
        pytest.param("0.0000000001", "1n", id="below-nano-decimal"),
        pytest.param("-0.5", "-500m", id="negative"),
        pytest.param("0", "0", id="zero"),
        pytest.param("0Gi", "0", id="zero-binary"),
        pytest.param("-0.0", "0", id="negative-zero"),
        pytest.param("1000E", "1e21", id="beyond-exa"),
        pytest.param("12Mi", "12Mi", id="memory"),
        pytest.param("250m", "250m", id="cpu"),
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    assert to_canonical(text) == canonical


def test_milli_and_int_value() -> None:
    assert milli_value("100m") == 100
    assert milli_value("1.5") == 1500
    assert milli_value("1n") == 1  # rounded up
    assert int_value("1.5") == 2
    assert int_value("1Gi") == 2**30
    assert Quantity.parse("250m").milli_value() == 250
    assert Quantity.parse("1Ki").int_value() == 1024


def test_quantity_arithmetic_and_compare() -> None:
    a, b = Quantity.parse("500Mi"), Quantity.parse("524Mi")
    assert str(a + b) == "1Gi"
    assert str(b - a) == "24Mi"
    assert a < b and b > a and a <= a
    assert Quantity.parse("1") == Quantity.parse("1000m") == 1
    assert hash(Quantity.parse("1")) == hash(Quantity.parse("1000m"))
    assert str(Quantity.parse("100m") * 3) == "300m"
    assert str(-Quantity.parse("1Gi")) == "-1Gi"
    assert sum([Quantity.parse("100m"), Quantity.parse("200m")], Quantity.of(0)) == Quantity.parse("0.3")
    assert str(Quantity.of(0) + Quantity.parse("2Gi")) == "2Gi"  # zero takes the other's format
    assert not Quantity.of(0)
    assert repr(Quantity.parse("2Gi")) == "Quantity('2Gi')"


def test_format_quantity_families() -> None:
    assert format_quantity(Fraction(2048), BINARY_SI) == "2Ki"
    assert format_quantity(Fraction(2048), DECIMAL_SI) == "2048"
    assert format_quantity(Fraction(2000), DECIMAL_EXPONENT) == "2e3"
    assert format_quantity(Fraction(1, 3), DECIMAL_SI) == "333333334n"


_numbers = st.builds(
    lambda sign, whole, frac: f"{sign}{whole}" + (f".{frac}" if frac else ""),
    st.sampled_from(["", "-", "+"]),
    st.integers(min_value=0, max_value=10**12),
    st.one_of(st.none(), st.from_regex(r"[0-9]{1,12}", fullmatch=True)),
)
_suffixes = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "P", "E",
                             "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-6", "E2", "e0"])


@given(_numbers, _suffixes)
def test_canonical_roundtrip(number: str, suffix: str) -> None:
    text = number + suffix
    canonical = to_canonical(text)
    assert parse_quantity(canonical) == parse_quantity(text)
    assert to_canonical(canonical) == canonical
