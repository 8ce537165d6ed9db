"""Space: knob validation, unit vectors to params and back, JSON round trip, the demo space."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search import (
    KNOBS,
    SEARCHABLE,
    Choice,
    Float,
    Int,
    Space,
    SpaceError,
    default_space,
)
from tests.engine.search.strategies import spaces


@pytest.fixture
def space() -> Space:
    return Space(
        {
            "learning_rate": Float(1e-4, 1.0, "log"),
            "hidden_units": Int(8, 128, "log"),
            "optimizer": Choice(["sgd", "adam"]),
        },
        {"batch_size": 32, "batch_norm": False},
    )


def test_params_from_unit_merges_fixed(space: Space) -> None:
    params = space.params_from_unit(np.array([0.0, 1.0, 0.9]))
    assert params == {
        "learning_rate": 1e-4,
        "hidden_units": 128,
        "optimizer": "adam",
        "batch_size": 32,
        "batch_norm": False,
    }
    assert type(params["hidden_units"]) is int and type(params["learning_rate"]) is float
    assert space.sample_to_params([0.5, 0.5, 0.1])["learning_rate"] == pytest.approx(1e-2)


def test_dimension_names_and_axis(space: Space) -> None:
    assert space.dimension_names == ("learning_rate", "hidden_units", "optimizer")
    assert space.n_dims == 3
    assert space.axis("learning_rate").axis_type == "log"


def test_unit_from_params_inverts(space: Space) -> None:
    params = {"learning_rate": 1e-2, "hidden_units": 32, "optimizer": "sgd", "batch_size": 32}
    u = space.unit_from_params(params)
    assert u.shape == (3,)
    np.testing.assert_allclose(u[0], 0.5)
    assert space.params_from_unit(u) == {**params, "batch_norm": False}


@settings(max_examples=100)
@given(space=spaces(), data=st.data())
def test_round_trips_over_random_spaces(space: Space, data: st.DataObject) -> None:
    u = np.array(data.draw(st.lists(st.floats(0, 1), min_size=space.n_dims, max_size=space.n_dims)))
    params = space.params_from_unit(u)
    back = space.params_from_unit(space.unit_from_params(params))
    assert set(back) == set(params)
    for name, value in params.items():
        if isinstance(space.params.get(name), Float):  # equal up to rounding
            assert back[name] == pytest.approx(value, rel=1e-12, abs=1e-300)
        else:
            assert back[name] == value and type(back[name]) is type(value)
    again = Space.from_dict(json.loads(json.dumps(space.to_dict())))
    assert again == space
    assert again.params_from_unit(u) == params


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Space({"lr": Float(1e-4, 1, "log")}),
            "unknown hyperparameter 'lr'; searchable names: " + ", ".join(SEARCHABLE),
        ),
        (
            lambda: Space({"learning_rat": Float(1e-4, 1, "log")}),
            "unknown hyperparameter 'learning_rat' (did you mean 'learning_rate'?)",
        ),
        (lambda: Space({}, {"colour": "red"}), "unknown hyperparameter 'colour'"),
        (lambda: Space({"dropout": Float(0.0, 1.0)}), "dropout must be in [0, 1), got high=1.0"),
        (
            lambda: Space({"batch_size": Int(0, 64)}),
            "batch_size must be an integer in [1, 65536], got low=0",
        ),
        (
            lambda: Space({"learning_rate": Float(0.0, 1.0)}),
            "learning_rate must be > 0, got low=0.0",
        ),
        (lambda: Space({"l2": Float(-1.0, 1.0)}), "l2 must be >= 0, got low=-1.0"),
        (
            lambda: Space({"optimizer": Choice(["adam", "adamw"])}),
            "optimizer must be one of 'sgd', 'momentum', 'rmsprop', 'adam', got option='adamw'",
        ),
        (
            lambda: Space({"batch_norm": Choice([1, 0])}),
            "batch_norm must be one of True, False, got option=1",
        ),
        (
            lambda: Space({"batch_size": Choice([32, 64.5])}),
            "batch_size must be an integer in [1, 65536], got option=64.5",
        ),
        (
            lambda: Space({"batch_size": Float(1, 64)}),
            "batch_size is searched with Int or Choice, not Float",
        ),
        (
            lambda: Space({"activation": Int(1, 3)}),
            "activation is searched with Choice, not Int",
        ),
        (lambda: Space({}, {"dropout": 1.5}), "dropout must be in [0, 1), got value=1.5"),
        (lambda: Space({}, {"hidden_layers": 0}), "hidden_layers must be an integer in [1, 16]"),
        (
            lambda: Space({"learning_rate": Float(1e-4, 1, "log")}, {"learning_rate": 0.1}),
            "learning_rate: is both searched and fixed",
        ),
        (
            lambda: Space({"learning_rate": 0.1}),
            "learning_rate: expected Float, Int or Choice, got 0.1",
        ),
        (
            lambda: Space({"decay": Choice(["none", "exponential"])}),
            "decay_rate must be in (0, 1] when decay can be 'exponential', got default=0.0",
        ),
        (
            lambda: Space({"decay_rate": Float(0.1, 2.0)}, {"decay": "step"}),
            "decay_rate must be in (0, 1] when decay can be 'step', got high=2.0",
        ),
        (lambda: Space.from_dict({"params": {}, "extra": 1}), "unknown keys ['extra'] in a space"),
        (
            lambda: Space.from_dict(
                {"params": {"learning_rate": {"type": "float", "low": 1.0, "high": 0.1}}}
            ),
            "learning_rate: low must be <= high, got low=1.0, high=0.1",
        ),
        (
            lambda: default_space().params_from_unit([0.5]),
            "expected a unit vector of shape (5,), got (1,)",
        ),
        (
            lambda: default_space().unit_from_params({"learning_rate": 0.1}),
            "beta1: missing from params",
        ),
        (
            lambda: Space({"learning_rate": Float(1e-4, 1, "log")}).unit_from_params(
                {"learning_rate": 5.0}
            ),
            "learning_rate: value 5.0 is outside [0.0001, 1.0]",
        ),
    ],
)
def test_validation_messages(make, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        make()
    assert message in str(info.value)


def test_decay_with_a_valid_rate_is_accepted() -> None:
    space = Space(
        {"decay": Choice(["none", "exponential"]), "decay_rate": Float(0.5, 0.99)},
    )
    assert space.n_dims == 2


def test_default_space() -> None:
    space = default_space()
    assert set(space.dimension_names) >= {"learning_rate", "beta1", "hidden_units", "l2"}
    assert set(space.dimension_names) | set(space.fixed) == set(KNOBS)
    lr = space.params["learning_rate"]
    assert (lr.low, lr.high, lr.scale) == (1e-4, 1.0, "log")
    assert space.params["beta1"].scale == "one_minus_log"
    assert Space.from_dict(json.loads(json.dumps(space.to_dict()))) == space
