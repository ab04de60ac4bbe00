"""Go strconv.ParseFloat(s, 64), as Flux's numerical policy reads a tag (image-policies.md §5).

The expectations below were checked against Go's own strconv.ParseFloat.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.evaluate.goparse import RANGE, SYNTAX, ParseFloatError, parse_float

ACCEPTED = [
    # §5's examples
    ("1e3", 1000.0),
    ("1.5e3", 1500.0),
    ("+5", 5.0),
    (".5", 0.5),
    ("4.", 4.0),
    ("1_000", 1000.0),
    ("0x1p4", 16.0),
    ("Inf", math.inf),
    ("+Inf", math.inf),
    ("inf", math.inf),
    ("infinity", math.inf),
    ("1e-400", 0.0),  # underflow is not an error
    # more of Go's grammar
    ("-Infinity", -math.inf),
    ("+INFINITY", math.inf),
    ("-inf", -math.inf),
    ("-0", -0.0),
    ("0", 0.0),
    ("1.e5", 1e5),
    ("1E+5", 1e5),
    ("0X1P-2", 0.25),
    ("0x.8p1", 1.0),
    ("0x1.p0", 1.0),
    ("-0x1.8p1", -3.0),
    ("0x_1p0", 1.0),  # an underscore may follow the base prefix
    ("0x1p1_0", 1024.0),  # and sit between exponent digits
    ("1e1_0", 1e10),
    ("0_1", 1.0),
    ("1_2_3.4_5e1_0", 123.45e10),
    ("0e99999", 0.0),
    ("1e-99999999", 0.0),
    ("0x1p-99999999", 0.0),
    ("9007199254740993", 9007199254740992.0),  # rounds to even, as Go does
    ("1.7976931348623157e308", 1.7976931348623157e308),
    ("1.7976931348623158e308", 1.7976931348623157e308),
    ("1.7976931348623158079e308", 1.7976931348623157e308),  # just below the overflow threshold
    ("4.9e-324", 5e-324),
    ("2.4703282292062327e-324", 0.0),  # half the smallest subnormal, down to even
    ("2.4703282292062328e-324", 5e-324),
    ("0x1.fffffffffffff7p1023", 1.7976931348623157e308),
    ("0x1p-1075", 0.0),  # exactly half way to the smallest subnormal: ties to even (0)
    ("0x1.0000000000001p-1075", 5e-324),
    ("0x" + "f" * 40 + "p-100", float.fromhex("0x" + "f" * 40 + "p-100")),
    ("123456789012345678901234567890", 1.2345678901234568e29),
    ("0.000000000000000000000000000001e30", 1.0),
    ("0." + "0" * 20000 + "1e20010", 1e9),
    ("0." + "0" * 100000 + "1e100010", 0.0),  # Go stops reading exponent digits past 10000
    ("0x1p-1074_0", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted(text: str, expected: float) -> None:
    value = parse_float(text)
    assert value == expected
    assert math.copysign(1.0, value) == math.copysign(1.0, expected)


@pytest.mark.parametrize("text", ["NaN", "nan", "nAn"])
def test_nan_is_a_value(text: str) -> None:
    assert math.isnan(parse_float(text))


SYNTAX_ERRORS = [
    # §5's examples
    "0x10",  # hex needs a p exponent
    "0b101",
    "1__0",
    "_1",
    "-NaN",
    " 2",
    "2 ",
    # more
    "+NaN", "nan ", "infx", "infinit", "infinityy", "in", "+in", "", "+", "-", ".", "e5", ".e5",
    "1e", "1e+", "1e_5", "1e5_", "1_", "1_e5", "1._5", "1_.5", "-_1", "1__", "0x", "0x1", "0xp1",
    "0x1_p1", "0x_p1", "0o17", "0b1p1", "0x1e", "1.2.3", "latest", "v1", "1,5", "١", "٣.5", "∞",
    "1e1__0",
]


@pytest.mark.parametrize("text", SYNTAX_ERRORS)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(ParseFloatError) as caught:
        parse_float(text)
    assert caught.value.reason == SYNTAX
    assert str(caught.value) == f'parsing "{text}": invalid syntax'


@pytest.mark.parametrize(
    "text",
    ["1e400", "-1e400", "1.797693134862315808e308", "0x1p99999999999", "1e99999999999",
     "0x1.fffffffffffff8p1023"],
)
def test_overflow_is_a_range_error(text: str) -> None:
    with pytest.raises(ParseFloatError) as caught:
        parse_float(text)
    assert caught.value.reason == RANGE


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_round_trips_decimal_and_hex_spellings(x: float) -> None:
    assert parse_float(repr(x)) == x
    assert parse_float(x.hex()) == x


@given(st.text(alphabet="0123456789.eE+-", max_size=12))
def test_agrees_with_python_on_plain_decimals(text: str) -> None:
    """Where the two languages overlap (no underscores, hex, words or spaces), they agree."""
    try:
        expected: float | None = float(text)
    except ValueError:
        expected = None
    if expected is not None and math.isinf(expected):
        expected = None  # Python's overflow to inf is Go's range error
    try:
        value: float | None = parse_float(text)
    except ParseFloatError:
        value = None
    assert value == expected
