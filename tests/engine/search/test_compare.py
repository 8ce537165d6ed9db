"""Compare-page helpers: running best and distinct values."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from engine.search import best_so_far, distinct_values


def test_best_so_far() -> None:
    assert best_so_far([0.5, 0.4, 0.7, None, math.nan, 0.6]) == [0.5, 0.5, 0.7, 0.7, 0.7, 0.7]
    assert best_so_far([None, 2.0, 1.0, 3.0], maximize=False) == [None, 2.0, 1.0, 1.0]
    assert best_so_far([]) == []


@given(st.lists(st.floats(-1e6, 1e6), max_size=30))
def test_best_so_far_is_the_running_max(scores: list[float]) -> None:
    best = best_so_far(scores)
    assert best == [max(scores[: i + 1]) for i in range(len(scores))]
    assert best_so_far(scores, maximize=False) == [min(scores[: i + 1]) for i in range(len(scores))]


def test_distinct_values() -> None:
    params = [
        {"hidden_units": 64, "batch_norm": True},
        {"hidden_units": 64.0, "batch_norm": 1},
        {"hidden_units": 32},
        {"learning_rate": 0.1},
    ]
    assert distinct_values(params, "hidden_units") == 2
    assert distinct_values(params, "batch_norm") == 2  # True is not 1
    assert distinct_values(params, "dropout") == 0
