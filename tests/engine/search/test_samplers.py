"""What is particular to each batch sampler (the contract is in test_sampler_contract.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.search import (
    Choice,
    CoarseToFineSampler,
    Float,
    GridSampler,
    Int,
    QuasiRandomSampler,
    RandomSampler,
    Space,
    SpaceError,
    default_space,
    sampler_from_dict,
)


def parent_trials(space: Space, n: int = 30) -> list[tuple[dict, float]]:
    """A finished 'parent study': random trials scored by closeness to u = 0.3 everywhere."""
    units = RandomSampler().sample_unit(space, n, seed=99)
    return [(space.params_from_unit(u), float(-np.sum((u - 0.3) ** 2))) for u in units]


class TestGrid:
    space = Space(
        {
            "learning_rate": Float(1e-4, 1.0, "log"),
            "hidden_layers": Int(1, 3),
            "optimizer": Choice(["sgd", "adam"]),
        }
    )

    def test_exhaustive_without_duplicates(self) -> None:
        sampler = GridSampler(points_per_axis=5)
        size = sampler.grid_size(self.space)
        assert size == 5 * 3 * 2  # Int 1..3 has only 3 values; Choice enumerates its 2
        points = sampler.sample(self.space, seed=0)  # n=None: the whole grid
        keys = {tuple(p[n] for n in self.space.dimension_names) for p in points}
        assert len(points) == len(keys) == size
        rates = sorted({p["learning_rate"] for p in points})
        np.testing.assert_allclose(rates, [10**-3.6, 10**-2.8, 10**-2, 10**-1.2, 10**-0.4])
        ends = GridSampler(points_per_axis=5, ends=True).sample(self.space, seed=0)
        rates = sorted({p["learning_rate"] for p in ends})
        np.testing.assert_allclose(rates, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])  # even on the log axis
        assert {p["hidden_layers"] for p in points} == {1, 2, 3}
        assert {p["optimizer"] for p in points} == {"sgd", "adam"}

    def test_grid_count_says_a_choice_uses_every_option(self) -> None:
        sampler = GridSampler(points_per_axis=5)
        assert sampler.grid_count(self.space) == (
            "30 = 5 learning_rate x 3 hidden_layers (all its values) x 2 optimizer (every option)"
        )
        one = GridSampler(points_per_axis=1)
        assert one.grid_size(self.space) == 1 * 1 * 2
        assert one.grid_count(self.space).endswith("x 2 optimizer (every option)")

    def test_ends_round_trip_and_bad_value(self) -> None:
        sampler = sampler_from_dict(GridSampler(3, ends=True).to_dict())
        assert sampler.ends is True and sampler.to_dict()["ends"] is True
        with pytest.raises(SpaceError, match=r"ends must be true or false, got ends='yes'"):
            GridSampler(3, ends="yes")

    def test_order(self) -> None:
        ordered = GridSampler(points_per_axis=2, shuffle=False).sample_unit(self.space, seed=0)
        shuffled = GridSampler(points_per_axis=2).sample_unit(self.space, seed=0)
        assert sorted(map(tuple, ordered)) == list(map(tuple, ordered))
        assert sorted(map(tuple, shuffled)) == list(map(tuple, ordered))

    def test_grid_size_is_the_product(self) -> None:
        space = default_space()
        sampler = GridSampler(points_per_axis=4)
        axes = sampler.axes(space)
        assert (
            sampler.grid_size(space)
            == math.prod(len(a) for a in axes)
            == len(sampler.sample_unit(space, seed=1))
        )

    def test_limits(self) -> None:
        with pytest.raises(SpaceError) as info:
            GridSampler(points_per_axis=100, max_grid_size=500).validate(self.space)
        assert str(info.value) == (
            "the grid has 600 points (100 learning_rate x 3 hidden_layers x 2 optimizer), "
            "more than max_grid_size=500; lower points_per_axis or search fewer dimensions"
        )
        GridSampler(points_per_axis=100, max_grid_size=600).validate(self.space)
        with pytest.raises(SpaceError, match=r"has 146,000,000 points .* max_grid_size=10,000"):
            GridSampler(points_per_axis=100).sample_unit(default_space(), 5)
        with pytest.raises(SpaceError, match=r"grid sampler has only 30 points, asked for n=31"):
            GridSampler(points_per_axis=5).sample_unit(self.space, 31)
        with pytest.raises(SpaceError, match=r"points_per_axis must be an integer >= 1"):
            GridSampler(points_per_axis=0)

    def test_empty_space_has_one_point(self) -> None:
        space = Space({}, {"learning_rate": 0.1})
        assert GridSampler().sample(space, seed=0) == [{"learning_rate": 0.1}]


class TestQuasiRandom:
    def test_lhs_is_stratified(self) -> None:
        space = default_space()
        u = QuasiRandomSampler("lhs").sample_unit(space, 10, seed=0)
        for column in u.T:  # one point in each tenth of every axis
            assert sorted(np.floor(column * 10).astype(int)) == list(range(10))

    def test_sobol_fills_the_cube_better_than_random(self) -> None:
        from scipy.stats import qmc

        space = default_space()
        sobol = QuasiRandomSampler("sobol").sample_unit(space, 64, seed=0)
        rand = RandomSampler().sample_unit(space, 64, seed=0)
        assert qmc.discrepancy(sobol) < qmc.discrepancy(rand)

    def test_unknown_method(self) -> None:
        with pytest.raises(SpaceError, match=r"unknown method 'halton'; valid methods: sobol, lhs"):
            QuasiRandomSampler("halton")


class TestCoarseToFine:
    space = Space(
        {
            "learning_rate": Float(1e-4, 1.0, "log"),
            "hidden_units": Int(8, 128, "log"),
            "activation": Choice(["relu", "tanh", "sigmoid", "leaky_relu"]),
        }
    )

    def trials(self) -> list[tuple[dict, float]]:
        return parent_trials(self.space, n=40)

    def test_box_contains_the_top_k_and_is_smaller(self) -> None:
        sampler = CoarseToFineSampler(self.trials(), top_k=5, shrink=0.25)
        box = sampler.box(self.space)
        top = sampler.top_trials()
        assert len(top) == 5 and top[0][1] == max(s for _, s in self.trials())
        for params, _ in top:
            assert box.contains(self.space.unit_from_params(params))
        assert 0 < box.volume < 1
        assert np.all(box.high - box.low >= 0.25 - 1e-12)
        assert set(box.unit) == set(box.values) == set(self.space.dimension_names)
        lo, hi = box.values["learning_rate"]
        assert 1e-4 <= lo < hi <= 1.0
        for params, _ in top:
            assert lo <= params["learning_rate"] <= hi
            assert params["activation"] in box.values["activation"]
        json.dumps(box.to_dict())

    def test_samples_fall_in_the_box(self) -> None:
        sampler = CoarseToFineSampler(self.trials(), top_k=5, shrink=0.25)
        box = sampler.box(self.space)
        for u in sampler.sample_unit(self.space, 200, seed=0):
            assert box.contains(u)

    def test_direction(self) -> None:
        trials = [({"learning_rate": 1e-4, "hidden_units": 8, "activation": "relu"}, 0.9)]
        trials.append(({"learning_rate": 1.0, "hidden_units": 128, "activation": "tanh"}, 0.1))
        high = CoarseToFineSampler(trials, top_k=1, shrink=0.2).box(self.space)
        low = CoarseToFineSampler(trials, top_k=1, shrink=0.2, maximize=False).box(self.space)
        assert high.unit["learning_rate"] == pytest.approx((0.0, 0.2))
        assert low.unit["learning_rate"] == pytest.approx((0.8, 1.0))
        assert high.values["activation"] == ("relu", "tanh", "sigmoid", "leaky_relu")  # kept

    def test_direction_comes_from_the_objective(self) -> None:
        trials = [({"learning_rate": 1e-4, "hidden_units": 8, "activation": "relu"}, 0.9)]
        trials.append(({"learning_rate": 1.0, "hidden_units": 128, "activation": "tanh"}, 0.1))
        error = CoarseToFineSampler(trials, top_k=1, shrink=0.2, objective={"metric": "val_error"})
        assert error.box(self.space).unit["learning_rate"] == pytest.approx((0.8, 1.0))
        again = sampler_from_dict(json.loads(json.dumps(error.to_dict())))
        assert again.objective.metric == "val_error" and "maximize" not in error.to_dict()
        with pytest.raises(SpaceError, match="maximize=True contradicts the objective"):
            CoarseToFineSampler(trials, maximize=True, objective={"metric": "val_loss"})

    def test_within_a_box_the_zoom_shrinks_that_box(self) -> None:
        trial = ({"learning_rate": 1e-2, "hidden_units": 32, "activation": "sigmoid"}, 1.0)
        within = {"unit": {"learning_rate": [0.4, 0.8], "hidden_units": [0.0, 1.0],
                           "activation": [0.5, 1.0]}}
        box = CoarseToFineSampler([trial], top_k=1, shrink=0.5, within=within).box(self.space)
        assert box.unit["learning_rate"] == pytest.approx((0.4, 0.6))  # 0.5 of 0.4, slid in
        assert box.unit["hidden_units"][1] - box.unit["hidden_units"][0] == pytest.approx(0.5)
        with pytest.raises(SpaceError, match="within: learning_rate must be"):
            CoarseToFineSampler([trial], within={"unit": {"learning_rate": [0.9, 0.1]}})

    def test_box_stays_in_the_cube_around_a_centre(self) -> None:
        trial = ({"learning_rate": 1e-2, "hidden_units": 32, "activation": "sigmoid"}, 1.0)
        box = CoarseToFineSampler([trial], top_k=3, shrink=0.5).box(self.space)
        assert box.unit["learning_rate"] == pytest.approx((0.25, 0.75))
        assert box.values["learning_rate"] == pytest.approx((1e-3, 1e-1))

    def test_failed_trials_are_ignored(self) -> None:
        trials = [
            {
                "params": {"learning_rate": 1.0, "hidden_units": 8, "activation": "relu"},
                "score": None,
            },
            ({"learning_rate": 1e-3, "hidden_units": 8, "activation": "relu"}, float("nan")),
            ({"learning_rate": 1e-4, "hidden_units": 8, "activation": "relu"}, 0.5),
        ]
        sampler = CoarseToFineSampler(trials, top_k=3)
        assert [s for _, s in sampler.top_trials()] == [0.5]
        again = sampler_from_dict(json.loads(json.dumps(sampler.to_dict())))
        assert again.box(self.space) == sampler.box(self.space)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"parent_trials": []}, "needs at least one parent trial with a finite score"),
            ({"parent_trials": [({}, None)]}, "got none among 1 trials"),
            ({"parent_trials": [({}, 1.0)], "top_k": 0}, "top_k must be an integer >= 1"),
            ({"parent_trials": [({}, 1.0)], "shrink": 0}, "shrink must be in (0, 1], got shrink=0"),
            ({"parent_trials": [("x", 1.0)]}, "a parent trial's params must be a dict"),
        ],
    )
    def test_validation(self, kwargs: dict, message: str) -> None:
        with pytest.raises(SpaceError) as info:
            CoarseToFineSampler(**kwargs)
        assert message in str(info.value)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"kind": "bayes"}, "unknown sampler kind 'bayes'; valid kinds: grid, random"),
        ({"kind": "grid", "points": 3}, "unknown keys ['points'] for a grid sampler"),
        ({"kind": "random", "seed": 3}, "unknown keys ['seed'] for a random sampler"),
    ],
)
def test_sampler_from_dict_errors(d: dict, message: str) -> None:
    with pytest.raises(SpaceError) as info:
        sampler_from_dict(d)
    assert message in str(info.value)


def test_a_zoom_keeps_every_option_of_a_choice():
    """Options have no order: the box around trials that all used adam (last of the optimizers)
    used to cover only rmsprop and adam, so sgd silently vanished from the child study."""
    space = Space({"learning_rate": Float(1e-4, 1.0, "log"),
                   "optimizer": Choice(["sgd", "momentum", "rmsprop", "adam"])})
    trials = [({"learning_rate": 10 ** (-4 + 4 * i / 19), "optimizer": "adam"}, i / 19)
              for i in range(20)]
    sampler = CoarseToFineSampler(trials, top_k=3, shrink=0.25)
    box = sampler.box(space)
    assert box.values["optimizer"] == ("sgd", "momentum", "rmsprop", "adam")
    assert box.unit["optimizer"] == (0.0, 1.0)
    low, high = box.unit["learning_rate"]
    assert high - low < 0.5  # the numbers still narrow
    sampled = {space.params_from_unit(u)["optimizer"]
               for u in sampler.sample_unit(space, 64, seed=0)}
    assert sampled == {"sgd", "momentum", "rmsprop", "adam"}
