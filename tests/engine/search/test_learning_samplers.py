"""What the samplers that learn (gp, tpe, zoom) share: the Sobol start, learning from the
highest rung with enough results, steering parallel workers apart, finding better points than
random search, and the slices they show (the contract itself is in test_sampler_contract.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.search import (
    SAMPLERS,
    Choice,
    Float,
    History,
    Int,
    Objective,
    QuasiRandomSampler,
    RandomSampler,
    Space,
    SpaceError,
    ask_rng,
    sampler_from_dict,
)
from engine.search.samplers.learning import observed, snap
from tests.engine.search.helpers import best_loss, record, run

LEARNING = ["gp", "tpe", "zoom"]
SPACE6 = Space({
    "learning_rate": Float(1e-5, 1.0, "log"),
    "beta1": Float(0.8, 0.999, "one_minus_log"),
    "hidden_units": Int(8, 256, "log"),
    "l2": Float(1e-7, 0.1, "log"),
    "dropout": Float(0.0, 0.9),
    "momentum": Float(0.0, 0.99),
})
OPTIMUM = np.array([0.62, 0.3, 0.5, 0.5, 0.5, 0.5])


def bowl(u: np.ndarray) -> float:
    """Only the first two axes matter (a tilted valley); the optimum's loss is 0."""
    a, b = u[0] - OPTIMUM[0], u[1] - OPTIMUM[1]
    return float((a + 0.5 * b) ** 2 * 4 + b**2)


def test_every_learning_kind_is_registered_and_learns() -> None:
    for kind in LEARNING:
        assert SAMPLERS[kind].learns
    assert not SAMPLERS["random"].learns


@pytest.mark.parametrize("kind", LEARNING)
def test_the_start_is_a_quasi_random_studys_first_rows(kind) -> None:
    sampler = SAMPLERS[kind]()
    history = run(sampler, SPACE6, bowl, sampler.n_startup, seed=4)
    expected = snap(SPACE6, QuasiRandomSampler("sobol").sample_unit(SPACE6, sampler.n_startup, 4))
    np.testing.assert_array_equal(np.stack([t.point() for t in history.trials]), expected)


def sphere(u: np.ndarray) -> float:
    return float(np.sum((u - OPTIMUM) ** 2))


@pytest.mark.parametrize("kind", LEARNING)
def test_finds_better_points_than_random_search(kind) -> None:
    ours, random = [], []
    for seed in range(3):
        ours.append(best_loss(run(SAMPLERS[kind](), SPACE6, sphere, 30, seed)))
        random.append(best_loss(run(RandomSampler(), SPACE6, sphere, 30, seed)))
    assert np.median(ours) < 0.5 * np.median(random), (ours, random)


@pytest.mark.parametrize("kind", LEARNING)
def test_parallel_asks_do_not_repeat_pending_points(kind) -> None:
    sampler = SAMPLERS[kind]()
    history = run(sampler, SPACE6, bowl, 24, seed=1)
    asked = []
    for _ in range(4):  # four workers ask before any result comes back
        u = sampler.ask(SPACE6, history, ask_rng(history.seed, history.number))
        asked.append(u)
        history = record(history, SPACE6, u)
    gaps = [np.max(np.abs(a - b)) for i, a in enumerate(asked) for b in asked[:i]]
    assert min(gaps) > 1e-3, asked


def test_gp_moves_away_from_a_pending_copy_of_its_proposal() -> None:
    sampler = SAMPLERS["gp"]()
    history = run(sampler, SPACE6, bowl, 20, seed=2)
    proposal = sampler.ask(SPACE6, history, ask_rng(2, history.number))
    with_pending = record(history, SPACE6, proposal)
    again = sampler.ask(SPACE6, with_pending, ask_rng(2, with_pending.number))
    assert np.max(np.abs(again - proposal)) > 1e-3


def _two_rungs(space: Space, n_low: int, n_high: int, best_low: float, best_high: float,
               seed: int = 0) -> History:
    """``n_low`` trials scored at epoch 1 only (pruned) by closeness to ``best_low`` on the
    first axis, and ``n_high`` scored at epochs 1 and 3, at epoch 3 by closeness to
    ``best_high``."""
    rng = np.random.default_rng(seed)
    history = History(objective=Objective("val_loss"), seed=seed)
    for k in range(n_low + n_high):
        u = rng.random(space.n_dims)
        low = float((u[0] - best_low) ** 2)
        if k < n_low:
            history = record(history, space, u, {1: low}, "pruned")
        else:
            history = record(history, space, u, {1: low, 3: float((u[0] - best_high) ** 2)})
    return history


def test_learns_from_the_highest_rung_with_enough_results() -> None:
    space = Space({"learning_rate": Float(1e-5, 1.0, "log"), "dropout": Float(0.0, 0.9)})
    history = _two_rungs(space, 30, 3, 0.2, 0.8)
    data = observed(space, history, min_count=4)
    assert data.epoch == 1 and data.n == 33  # 3 results at epoch 3 are not enough
    history = _two_rungs(space, 30, 12, 0.2, 0.8)
    data = observed(space, history, min_count=4)
    assert data.epoch == 3 and data.n == 12
    for kind in ("gp", "tpe"):
        sampler = SAMPLERS[kind](n_startup=4)
        points = [sampler.ask(space, history, ask_rng(s, history.number))[0] for s in range(6)]
        assert abs(np.median(points) - 0.8) < 0.2, (kind, points)


def test_pending_trials_that_reported_at_the_rung_are_results_not_lies() -> None:
    space = Space({"learning_rate": Float(1e-5, 1.0, "log")})
    history = _two_rungs(space, 0, 6, 0.2, 0.8)
    running = record(history, space, np.array([0.5]), {1: 0.1, 3: 0.09}, "running")
    waiting = record(running, space, np.array([0.4]))
    data = observed(space, waiting, min_count=4)
    assert data.epoch == 3 and data.n == 7
    np.testing.assert_array_equal(data.pending, [[0.4]])


@pytest.mark.parametrize("kind", ["gp", "tpe"])
def test_a_choice_with_one_good_option_is_found(kind) -> None:
    space = Space({"learning_rate": Float(1e-5, 1.0, "log"),
                   "optimizer": Choice(["sgd", "momentum", "rmsprop", "adam"])})

    def loss(u: np.ndarray) -> float:
        option = space.params["optimizer"].from_unit(u[1])
        return (u[0] - 0.5) ** 2 + (0.0 if option == "rmsprop" else 0.3)

    history = run(SAMPLERS[kind](), space, loss, 30, seed=3)
    late = [t.params["optimizer"] for t in history.trials[15:]]
    assert late.count("rmsprop") >= 8, late


@pytest.mark.parametrize("kind", ["gp", "tpe"])
@pytest.mark.parametrize("metric", ["val_loss", "val_acc"])
def test_slices_show_the_predicted_score_on_each_parameters_scale(kind, metric) -> None:
    space = Space({"learning_rate": Float(1e-5, 1.0, "log"), "hidden_units": Int(8, 256, "log"),
                   "batch_norm": Choice([True, False])})
    sign = 1.0 if metric == "val_loss" else -1.0

    def loss(u: np.ndarray) -> float:
        return (u[0] - 0.7) ** 2 + 0.05 * u[1]

    history = run(SAMPLERS[kind](), space, loss, 25, seed=5)
    history = History(tuple(t.__class__(t.number, t.unit, t.params, t.state,
                                        {e: sign * s for e, s in t.scores.items()},
                                        t.target_epochs) for t in history.trials),
                      Objective(metric), seed=5)
    belief = SAMPLERS[kind]().describe(space, history)
    assert json.loads(json.dumps(belief)) == belief
    assert set(belief["slices"]) == {"learning_rate", "hidden_units", "batch_norm"}
    lr = belief["slices"]["learning_rate"]
    assert lr["values"][0] == pytest.approx(1e-5) and lr["values"][-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lr["values"], lr["values"][1:]))
    assert all(lo <= m <= hi for lo, m, hi in zip(lr["low"], lr["mean"], lr["high"]))
    best_value = lr["values"][int(np.argmax(np.array(lr["mean"]) * -sign))]
    assert 10 ** (-5 + 5 * 0.5) < best_value < 10 ** (-5 + 5 * 0.9)  # the optimum is u = 0.7
    units = belief["slices"]["hidden_units"]["values"]
    assert all(isinstance(v, int) and 8 <= v <= 256 for v in units)
    assert belief["slices"]["batch_norm"]["values"] == [True, False]
    assert len(belief["observed"]) == 25 and belief["epoch"] == 1


def test_no_belief_before_the_model_has_data() -> None:
    for kind in ("gp", "tpe"):
        sampler = SAMPLERS[kind]()
        assert sampler.describe(SPACE6, run(sampler, SPACE6, bowl, 3)) is None


def test_settings_are_checked() -> None:
    with pytest.raises(SpaceError, match=r"quantile must be in \(0, 1\), got quantile=1.5"):
        SAMPLERS["tpe"](quantile=1.5)
    with pytest.raises(SpaceError, match=r"n_startup must be an integer >= 1, got n_startup=0"):
        SAMPLERS["gp"](n_startup=0)
    with pytest.raises(SpaceError, match=r"shrink must be a number in \(0, 0.9\]"):
        SAMPLERS["zoom"](shrink=1.0)
    tpe = SAMPLERS["tpe"](n_startup=5, quantile=0.25)
    assert sampler_from_dict(json.loads(json.dumps(tpe.to_dict()))) == tpe


def test_tpe_keeps_trying_other_options_of_a_choice_its_good_trials_share() -> None:
    from engine.search.samplers.tpe import Parzen

    space = Space({"learning_rate": Float(1e-5, 1.0, "log"),
                   "optimizer": Choice(["sgd", "momentum", "adam"])})
    rng = np.random.default_rng(0)
    points = snap(space, np.column_stack([rng.random(20), np.full(20, 1 / 6)]))  # all "sgd"
    good = Parzen(space, points)
    draws = good.sample(3000, np.random.default_rng(1))
    others = np.mean(draws[:, 1] >= 1 / 3)
    assert others > 0.06  # a hard choice gave only the prior's share, 1/21 * 2/3 = 3%
    density = good.log_pdf(snap(space, np.array([[0.5, 1 / 6], [0.5, 5 / 6]])))
    assert np.all(np.isfinite(density)) and density[0] > density[1]


def test_one_blas_thread_limits_scipys_own_blas_too() -> None:
    """SciPy links an OpenBLAS apart from NumPy's; a fresh process that limits BLAS before
    SciPy is loaded must still run the GP's solves on one thread."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy\n"
        "from engine.search.samplers.learning import one_blas_thread\n"
        "with one_blas_thread():\n"
        "    import scipy.linalg\n"
        "    from threadpoolctl import threadpool_info\n"
        "    print(max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, check=True)
    assert out.stdout.strip() == "1", out.stderr


@pytest.mark.parametrize("kind", LEARNING)
def test_a_space_of_one_point_is_asked_without_a_model(kind) -> None:
    """Single-option Choices leave nothing to learn (the GP had 0 features and raised)."""
    space = Space({"optimizer": Choice(["sgd"]), "batch_norm": Choice([True])})
    sampler = SAMPLERS[kind]() if kind == "zoom" else SAMPLERS[kind](n_startup=2)
    history = run(sampler, space, lambda u: 0.5, 12)
    assert {t.params["optimizer"] for t in history.trials} == {"sgd"}
    assert all(np.all((t.point() >= 0) & (t.point() < 1)) for t in history.trials)
    if kind != "zoom":
        assert sampler.describe(space, history) is None
