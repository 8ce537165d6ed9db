"""How the knob forms print numbers (issue 12 item 16: 0.0001 showed as "0.000").

The designer's boxes start from ``fmt(value)``: exact and short enough for a narrow box. The
babysit form's number boxes print with ``KNOB_FORMATS`` (printf formats): whatever the value,
what the box shows reads back as that value to six significant digits (an L2 strength, never
close to 1, to four). And a knob's name may break only after an underscore.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.designer_rows import RANGES, knob_label
from app.numbers import elapsed, fmt, short
from app.panda_forms import KNOB_FORMATS
from engine.search import KNOBS

SMALL_AND_CLOSE_TO_ONE = [1e-4, 1e-5, 2.5e-5, 1e-8, 0.0012, 0.1234, 0.9, 0.999, 0.9999, 0.99999]


@pytest.mark.parametrize("value, shown", [
    (1e-4, "1e-4"), (2.5e-5, "2.5e-5"), (1e-10, "1e-10"), (1e-6, "1e-6"), (0.9999, "0.9999"),
    (0.001, "0.001"), (0.5, "0.5"), (1.0, "1"), (20, "20"), (256, "256"), (2e6, "2e6"),
    (0.0, "0"), (-3e-4, "-3e-4"),
])
def test_fmt_is_short_and_never_rounds_a_small_value_away(value, shown):
    assert fmt(value) == shown


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_fmt_reads_back_exactly(value):
    assert float(fmt(value)) == value


def test_every_default_range_fits_a_narrow_box():
    """Six characters fit the low/high boxes at 1,024 px (checked in Chromium too)."""
    for name, (low, high, _) in RANGES.items():
        assert len(fmt(low)) <= 6 and len(fmt(high)) <= 6, name


@pytest.mark.parametrize("name", sorted(KNOB_FORMATS))
@pytest.mark.parametrize("value", SMALL_AND_CLOSE_TO_ONE)
def test_the_babysit_boxes_show_small_values_and_values_close_to_one(name, value):
    if name == "l2" and value > 0.5:
        return  # no L2 strength is close to 1
    shown = KNOB_FORMATS[name] % value
    digits = 4 if name == "l2" else 6
    assert math.isclose(float(shown), value, rel_tol=10.0 ** -digits), \
        f"{name}: {value} shows as {shown}"


def test_a_knob_drawn_by_a_search_shows_short_enough_for_its_box():
    """A trial's knobs come with every digit their sampler drew (seen in Chromium: Adam's
    beta1 0.9962684670368088 and L2 7.15437745364513e-05 cut in their boxes)."""
    assert KNOB_FORMATS["beta1"] % 0.9962684670368088 == "0.996268"
    assert KNOB_FORMATS["l2"] % 7.15437745364513e-05 == "7.154e-05"


def test_knob_names_break_only_after_an_underscore():
    for name in KNOBS:
        label = knob_label(name)
        assert label.replace("\u200b", "") == f"**{name}**"
        for i, char in enumerate(label):
            if char == "\u200b":
                assert label[i - 1] == "_"
    assert knob_label("learning_rate") == "**learning_\u200brate**"


@pytest.mark.parametrize("value, shown", [
    (1e-4, "1e-4"), (0.000123456, "1.23e-4"), (0.0123456, "0.0123"), (0.99999, "1"),
    (1234.5, "1230"), (3.2e-4, "3.2e-4"), (0.01, "0.01"),
])
def test_short_keeps_three_digits_and_never_prints_zero(value, shown):
    assert short(value) == shown
    assert short(1e-4, 2) == "1e-4" and short(0.00032, 2) == "3.2e-4"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (63.4, "63 s"), (99.4, "99 s"), (754, "13 min"), (5999, "100 min"),
    (9000, "2.5 h"), (-3, "0 s")])
def test_an_elapsed_time_stays_short(seconds, text):
    assert elapsed(seconds) == text
