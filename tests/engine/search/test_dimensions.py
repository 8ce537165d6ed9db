"""Dimensions: unit round trips on every scale, distributions, axes, validation messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from engine.search import Choice, Float, Int, SpaceError, dimension_from_dict
from tests.engine.search.strategies import any_dims, choice_dims, float_dims, int_dims

units = st.floats(0.0, 1.0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


class TestRoundTrip:
    @settings(max_examples=200)
    @given(dim=float_dims(), u=units)
    def test_float_value_round_trip(self, dim: Float, u: float) -> None:
        x = dim.from_unit(u)
        assert dim.low <= x <= dim.high
        back = dim.from_unit(dim.to_unit(x))
        if dim.scale == "one_minus_log":  # compare 1 - x, the quantity on the log scale
            assert math.isclose(1 - back, 1 - x, rel_tol=1e-6, abs_tol=1e-15)
        else:
            assert math.isclose(back, x, rel_tol=1e-9, abs_tol=1e-9)

    @settings(max_examples=200)
    @given(dim=float_dims(), u=units)
    def test_float_unit_round_trip(self, dim: Float, u: float) -> None:
        back = dim.to_unit(dim.from_unit(u))
        assert 0.0 <= back <= 1.0
        if dim.low == dim.high:
            assert back == 0.0
        elif dim.high - dim.low >= 1e-8 * max(1.0, abs(dim.low), abs(dim.high)):
            # (a range only a few ulps wide cannot resolve u to 1e-6)
            assert math.isclose(back, u, abs_tol=1e-6)

    @settings(max_examples=200)
    @given(dim=int_dims(), data=st.data())
    def test_int_value_round_trip_is_exact(self, dim: Int, data: st.DataObject) -> None:
        v = data.draw(st.integers(dim.low, dim.high))
        u = dim.to_unit(v)
        assert 0.0 <= u <= 1.0
        assert dim.from_unit(u) == v

    @settings(max_examples=200)
    @given(dim=int_dims(), u=st.floats(-1.0, 2.0))
    def test_int_from_unit_stays_in_bounds(self, dim: Int, u: float) -> None:
        v = dim.from_unit(u)
        assert isinstance(v, int) and dim.low <= v <= dim.high

    @given(dim=int_dims())
    def test_int_ends(self, dim: Int) -> None:
        assert dim.from_unit(0.0) == dim.low
        assert dim.from_unit(1.0) == dim.high

    @given(dim=choice_dims(), u=units)
    def test_choice_round_trip(self, dim: Choice, u: float) -> None:
        value = dim.from_unit(u)
        assert dim.from_unit(dim.to_unit(value)) == value
        assert dim.index(dim.from_unit(dim.to_unit(value))) == dim.index(value)

    def test_choice_equal_bins(self) -> None:
        dim = Choice(["a", "b", "c", "d"])
        assert [dim.from_unit(u) for u in (0.0, 0.24, 0.25, 0.5, 0.74, 0.75, 1.0)] == [
            "a",
            "a",
            "b",
            "c",
            "c",
            "d",
            "d",
        ]
        assert dim.to_unit("c") == 0.625

    def test_choice_keeps_bool_and_int_apart(self) -> None:
        dim = Choice([True, 1])
        assert dim.from_unit(dim.to_unit(1)) == 1 and dim.from_unit(0.0) is True

    @given(dim=any_dims)
    def test_json_round_trip(self, dim) -> None:
        assert dimension_from_dict(json.loads(json.dumps(dim.to_dict()))) == dim


class TestDistributions:
    def test_log_scale_is_uniform_in_log_space(self, rng: np.random.Generator) -> None:
        dim = Float(1e-4, 1.0, "log")
        x = np.array([dim.from_unit(u) for u in rng.random(2000)])
        assert stats.kstest(np.log10(x), stats.uniform(loc=-4, scale=4).cdf).pvalue > 0.01
        # the test has power: linear samples of the same range fail it
        lin = Float(1e-4, 1.0)
        y = np.array([lin.from_unit(u) for u in rng.random(2000)])
        assert stats.kstest(np.log10(y), stats.uniform(loc=-4, scale=4).cdf).pvalue < 1e-6

    def test_one_minus_log_puts_half_above_0_99(self, rng: np.random.Generator) -> None:
        dim = Float(0.9, 0.999, "one_minus_log")
        x = np.array([dim.from_unit(u) for u in rng.random(4000)])
        assert x.min() >= 0.9 and x.max() <= 0.999
        assert abs(np.mean(x > 0.99) - 0.5) < 0.03
        lin = Float(0.9, 0.999)
        assert np.mean(np.array([lin.from_unit(u) for u in rng.random(4000)]) > 0.99) < 0.15

    def test_int_linear_gives_every_integer_the_same_share(self, rng) -> None:
        dim = Int(1, 5)  # naive rounding would give 1 and 5 half the share of 2..4
        counts = np.bincount([dim.from_unit(u) for u in rng.random(5000)], minlength=6)[1:]
        assert stats.chisquare(counts).pvalue > 0.01

    def test_int_log_is_log_uniform(self, rng) -> None:
        dim = Int(8, 128, "log")
        v = np.array([dim.from_unit(u) for u in rng.random(4000)])
        assert abs(np.mean(v <= 32) - 0.5) < 0.04  # 32 = sqrt(8 * 128)


class TestGridAndAxes:
    def test_float_grid_units(self) -> None:
        np.testing.assert_allclose(Float(0, 1).grid_units(5, ends=True), [0, 0.25, 0.5, 0.75, 1])
        np.testing.assert_allclose(Float(0, 1).grid_units(4), [0.125, 0.375, 0.625, 0.875])
        assert Float(0, 1).grid_units(1).tolist() == [0.5]
        assert Float(0.3, 0.3).grid_units(5).tolist() == [0.0]

    def test_grid_defaults_to_cell_centres_not_the_extremes(self) -> None:
        dim = Float(1e-5, 1.0, "log")
        values = [dim.from_unit(u) for u in dim.grid_units(2)]
        np.testing.assert_allclose(values, [10**-3.75, 10**-1.25])  # 1.8e-4 and 5.6e-2
        ends = [dim.from_unit(u) for u in dim.grid_units(2, ends=True)]
        np.testing.assert_allclose(ends, [1e-5, 1.0])

    def test_int_grid_units_deduplicate(self) -> None:
        dim = Int(1, 3)
        values = [dim.from_unit(u) for u in dim.grid_units(10)]
        assert values == [1, 2, 3]
        log = Int(8, 128, "log")
        log_values = [log.from_unit(u) for u in log.grid_units(5, ends=True)]
        assert log_values[0] == 8 and log_values[-1] == 128 and len(set(log_values)) == 5
        centres = [log.from_unit(u) for u in log.grid_units(2)]
        assert 8 < centres[0] < centres[1] < 128

    def test_choice_grid_enumerates_options(self) -> None:
        dim = Choice(["sgd", "adam", "rmsprop"])
        for n in (1, 3, 7):
            assert [dim.from_unit(u) for u in dim.grid_units(n)] == ["sgd", "adam", "rmsprop"]

    def test_axes(self) -> None:
        assert Float(0, 1).axis.axis_type == "linear"
        log = Float(1e-4, 1, "log").axis
        assert (log.axis_type, log.transform) == ("log", "identity")
        beta = Float(0.9, 0.999, "one_minus_log").axis
        assert (beta.axis_type, beta.transform, beta.reversed) == ("log", "one_minus", True)
        np.testing.assert_allclose(beta.apply([0.9, 0.999]), [0.1, 0.001])
        assert beta.title("beta2") == "1 - beta2"
        choice = Choice([True, False]).axis
        assert (choice.axis_type, choice.categories) == ("category", ("True", "False"))

    def test_value_range(self) -> None:
        assert Choice(["a", "b", "c", "d"]).value_range(0.3, 0.6) == ("b", "c")
        assert Choice(["a", "b", "c", "d"]).value_range(0.25, 0.75) == ("b", "c")

    def test_choice_value_range_leaves_out_a_bin_that_only_touches_the_edge(self, rng) -> None:
        dim = Choice([True, False])
        assert dim.value_range(0.0, 0.5) == (True,)
        assert {dim.from_unit(u) for u in 0.5 * rng.random(1000)} == {True}
        assert dim.value_range(0.5, 1.0) == (False,)
        assert dim.value_range(0.5, 0.5) == (False,)  # a zero-width box holds one option
        assert dim.value_range(0.0, 1.0) == (True, False)
        assert Float(1e-4, 1, "log").value_range(0.25, 0.5) == pytest.approx((1e-3, 1e-2))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Float(1.0, 0.1, "log"), "low must be <= high, got low=1.0, high=0.1"),
        (lambda: Float(0.0, 1.0, "log"), "log scale needs low > 0, got low=0.0, high=1.0"),
        (
            lambda: Float(0.9, 1.0, "one_minus_log"),
            "one_minus_log scale needs 0 <= low <= high < 1, got low=0.9, high=1.0",
        ),
        (
            lambda: Float(-0.1, 0.5, "one_minus_log"),
            "one_minus_log scale needs 0 <= low <= high < 1, got low=-0.1, high=0.5",
        ),
        (
            lambda: Float(0, 1, "logarithmic"),
            "unknown scale 'logarithmic'; valid scales: linear, log, one_minus_log",
        ),
        (lambda: Float(math.nan, 1), "low must be a finite number, got low=nan"),
        (lambda: Float(0, "1"), "high must be a finite number, got high='1'"),
        (lambda: Int(5, 1), "low must be <= high, got low=5, high=1"),
        (lambda: Int(0.2, 0.8), "an Int's low must be a whole number, got low=0.2"),
        (lambda: Int(8.5, 64), "an Int's low must be a whole number, got low=8.5 (use 8 or 9"),
        (lambda: Int(1, 64.5), "an Int's high must be a whole number, got high=64.5"),
        (lambda: Int(0, 10, "log"), "log scale needs low >= 1 for an Int, got low=0"),
        (lambda: Int(1, 10, "one_minus_log"), "one_minus_log scale is for Float values"),
        (lambda: Choice([]), "a Choice needs at least one option, got options=[]"),
        (lambda: Choice("abc"), "options must be a list, got options='abc'"),
        (lambda: Choice(["a", "a"]), "duplicate option 'a' in options=['a', 'a']"),
        (lambda: Choice([1, 1.0]), "duplicate option 1.0 in options=[1, 1.0]"),
        (lambda: Choice([[1]]), "options must be str, int, float or bool, got option [1]"),
        (lambda: Float(0, 1).to_unit(2.0), "value 2.0 is outside [0.0, 1.0]"),
        (lambda: Int(1, 5).to_unit(2.5), "value 2.5 is not an integer in [1, 5]"),
        (lambda: Choice(["a", "b"]).to_unit("c"), "value 'c' is not one of the options: 'a', 'b'"),
        (
            lambda: dimension_from_dict(
                {"type": "float", "low": 1.0, "high": 0.1, "scale": "log"}, "learning_rate"
            ),
            "learning_rate: low must be <= high, got low=1.0, high=0.1",
        ),
        (
            lambda: dimension_from_dict({"type": "real", "low": 0, "high": 1}, "l2"),
            "l2: unknown dimension type 'real'; valid types: float, int, choice",
        ),
        (
            lambda: dimension_from_dict({"type": "int", "low": 1, "high": 2, "step": 1}, "x"),
            "x: unknown keys ['step'] for type 'int'; valid keys: ['low', 'high', 'scale']",
        ),
        (
            lambda: dimension_from_dict({"type": "float", "low": 1}, "l2"),
            "l2: missing keys ['high'] for type 'float'",
        ),
    ],
)
def test_validation_messages(make, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        make()
    assert message in str(info.value)
