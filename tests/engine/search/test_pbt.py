"""Population-based training's pure logic: who copies whom, how knobs move, what stays fixed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.search import (
    Choice,
    Float,
    History,
    Int,
    Objective,
    PopulationBased,
    SchedulerError,
    Space,
    SpaceError,
    TrialRecord,
    pbt,
    scheduler_from_dict,
)
from tests.engine.search.strategies import float_dims, int_dims

SPACE = Space(
    {
        "learning_rate": Float(1e-4, 1.0, "log"),
        "beta1": Float(0.8, 0.999, "one_minus_log"),
        "batch_size": Int(16, 256, "log"),
        "decay": Choice(("none", "inverse")),
        "hidden_units": Int(8, 128, "log"),
        "activation": Choice(("relu", "tanh")),
        "batch_norm": Choice((True, False)),
        "optimizer": Choice(("adam", "momentum")),
    },
    {"hidden_layers": 1, "n_epochs": 6},
)
ARCHITECTURE = ("hidden_units", "activation", "batch_norm", "optimizer", "hidden_layers")


def population(n: int, seed: int = 0) -> dict[int, dict]:
    from engine.search import RandomSampler

    return dict(enumerate(RandomSampler().sample(SPACE, n, seed=seed)))


def test_bottom_quantile_copies_a_top_quantile_trial():
    params = population(8)
    scores = {i: 0.1 * i for i in range(8)}  # trial 7 best
    out = PopulationBased(2, 3).exploit_explore(scores, params, SPACE, np.random.default_rng(0))
    assert sorted(out) == [0, 1]  # 25 % of 8
    assert all(donor in (6, 7) for donor, _ in out.values())
    low = PopulationBased(2, 3).exploit_explore(
        scores, params, SPACE, np.random.default_rng(0), maximize=False)
    assert sorted(low) == [6, 7] and all(d in (0, 1) for d, _ in low.values())


def test_small_populations_and_bad_scores():
    params = population(4)
    assert pbt.exploit_explore({0: 0.5}, params, SPACE, np.random.default_rng(0)) == {}
    two = pbt.exploit_explore({0: 0.5, 1: 0.9}, params, SPACE, np.random.default_rng(0))
    assert list(two) == [0] and two[0][0] == 1  # at least one is replaced
    nan = pbt.exploit_explore({0: 0.5, 1: math.nan, 2: 0.7, 3: 0.6}, params, SPACE,
                              np.random.default_rng(0))
    assert list(nan) == [1] and nan[1][0] == 2  # a non-finite score ranks last


def test_architecture_is_copied_from_the_donor_and_training_knobs_move():
    params = population(8, seed=5)
    scores = {i: float(i) for i in range(8)}
    out = pbt.exploit_explore(scores, params, SPACE, np.random.default_rng(1),
                              resample_probability=0.0)
    for donor, new in out.values():
        for name in ARCHITECTURE:
            assert new[name] == params[donor][name], name
        ratio = new["learning_rate"] / params[donor]["learning_rate"]
        assert ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2)
        assert new["decay"] == params[donor]["decay"]  # a Choice only moves by resampling
        assert new["batch_size"] != params[donor]["batch_size"]
        assert set(new) == set(params[donor])
    assert pbt.frozen_dims(SPACE) == ["hidden_units", "activation", "batch_norm", "optimizer"]


def test_resampling_reaches_other_values_and_keeps_the_architecture():
    params = population(2)
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(40):
        new = pbt.explore(params[0], SPACE, rng, resample_probability=1.0)
        seen.add(new["decay"])
        assert all(new[name] == params[0][name] for name in ARCHITECTURE)
        SPACE.unit_from_params(new)  # every value inside the space
    assert seen == {"none", "inverse"}


def test_log_and_one_minus_log_move_by_a_constant_step_in_unit_space():
    lr, beta = SPACE.params["learning_rate"], SPACE.params["beta1"]
    for value in (1e-3, 1e-2):
        step = lr.to_unit(pbt.perturb_value(lr, value, 1.2)) - lr.to_unit(value)
        assert step == pytest.approx(math.log10(1.2) / 4)
    for value in (0.9, 0.99):
        step = beta.to_unit(pbt.perturb_value(beta, value, 1.2)) - beta.to_unit(value)
        assert step == pytest.approx(-math.log10(1.2) / math.log10(0.2 / 0.001))
    assert pbt.perturb_value(lr, 0.9, 1.2) == 1.0  # clipped to the bound
    assert pbt.perturb_value(Int(1, 10), 1, 1.2) == 2  # an Int moves by at least one


@given(st.one_of(float_dims(), int_dims()), st.floats(0.0, 1.0),
       st.sampled_from([0.5, 0.8, 1.2, 2.0]))
def test_perturbed_values_stay_in_bounds_and_on_scale(dim, u, factor):
    value = pbt.perturb_value(dim, dim.from_unit(u), factor)
    assert dim.low <= value <= dim.high
    assert 0.0 <= dim.to_unit(value) <= 1.0  # a valid value of the dimension
    if isinstance(dim, Int):
        assert isinstance(value, int)


def test_deterministic_per_seed():
    params = population(8)
    scores = {i: float(i % 5) for i in range(8)}
    scheduler = PopulationBased(2, 3, quantile=0.5)
    runs = [scheduler.exploit_explore(scores, params, SPACE, np.random.default_rng(s))
            for s in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_rungs_decisions_and_json_round_trip():
    scheduler = PopulationBased(interval=2, n_rounds=3, quantile=0.2, perturb=(0.5, 2.0))
    assert scheduler.rungs == (2, 4, 6) and scheduler.max_epochs == 6
    assert [scheduler.next_milestone(0, d, 6) for d in range(6)] == [2, 2, 4, 4, 6, 6]
    history = History(tuple(TrialRecord(n, (0.5,), {}, "running", {2: 0.1 * n, 6: 0.2}, 6)
                            for n in range(3)), Objective("val_acc"))
    assert scheduler.decide(1, 2, history) == "pause"  # a round boundary: wait for the others
    assert scheduler.decide(1, 3, history) == "continue"
    assert scheduler.decide(1, 6, history) == "complete"
    d = json.loads(json.dumps(scheduler.to_dict()))
    assert d["kind"] == "pbt" and d["perturb"] == [0.5, 2.0]
    assert scheduler_from_dict(d) == scheduler


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"interval": 0}, "interval must be an integer >= 1, got interval=0"),
    ({"n_rounds": 1.5}, "n_rounds must be an integer >= 1"),
    ({"quantile": 0.6}, r"quantile must be a number in \(0, 0.5\], got quantile=0.6"),
    ({"perturb": []}, "perturb must be a non-empty list of positive factors"),
    ({"perturb": [0.8, -1]}, "perturb must be a non-empty list"),
    ({"resample_probability": 2}, r"resample_probability must be a number in \[0, 1\]"),
])
def test_invalid_settings_name_the_field(kwargs, message):
    with pytest.raises(SchedulerError, match=message):
        PopulationBased(**{"interval": 2, "n_rounds": 3, **kwargs})
    with pytest.raises(SchedulerError, match="unknown keys"):
        scheduler_from_dict({"kind": "pbt", "interval": 2, "n_rounds": 3, "eta": 3})
    with pytest.raises(SchedulerError, match=r"missing keys \['n_rounds'\] for a pbt"):
        scheduler_from_dict({"kind": "pbt", "interval": 2})


def test_a_space_without_training_knobs_is_refused():
    pbt.check_space(SPACE)
    with pytest.raises(SpaceError, match="this space searches hidden_units: search at least one"):
        pbt.check_space(Space({"hidden_units": Int(8, 64)}))
