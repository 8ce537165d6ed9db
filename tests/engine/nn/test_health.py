"""Network health: every number against a direct computation, and the three sick nets.

The direct computation here is written out independently of ``engine.nn.model``: a plain
forward pass, finite-difference gradients, and the statistics taken straight from their
definitions.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from engine.nn import ModelSpec, TrainConfig, new_state, train_segment
from engine.nn.health import (
    AUTO,
    CONFIDENT,
    HEALTH_ROWS,
    Cadence,
    epoch_health,
    health_key,
    layer_count,
)
from engine.nn.layers import BN_EPS
from engine.nn.model import init_params
from tests.engine.nn.checks import without_seconds
from tests.engine.nn.conftest import blobs


def direct_forward(spec, params, buffers, X, training):
    """(pre-activations z per affine layer, activation inputs per hidden layer, scores)."""
    zs, act_inputs, h = [], [], X
    for i in range(1, len(spec.hidden) + 1):
        z = h @ params[f"W{i}"]
        if spec.batch_norm:
            if training:
                mu, var = z.mean(axis=0), z.var(axis=0)
            else:
                mu, var = buffers[f"running_mean{i}"], buffers[f"running_var{i}"]
            a_in = params[f"gamma{i}"] * (z - mu) / np.sqrt(var + BN_EPS) + params[f"beta{i}"]
        else:
            z = z + params[f"b{i}"]
            a_in = z
        zs.append(z)
        act_inputs.append(a_in)
        h = np.maximum(a_in, 0) if spec.activation == "relu" else np.tanh(a_in)
    L = spec.n_layers
    scores = h @ params[f"W{L}"] + params[f"b{L}"]
    zs.append(scores)
    return zs, act_inputs, scores


def direct_proba(spec, scores):
    if spec.n_classes == 2:
        p = 1 / (1 + np.exp(-scores[:, 0]))
        return np.stack([1 - p, p], axis=1)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def direct_loss(spec, params, buffers, X, y):
    _, _, scores = direct_forward(spec, params, buffers, X, training=True)
    proba = direct_proba(spec, scores)
    return -np.mean(np.log(proba[np.arange(len(y)), y]))


def numeric_grad(spec, params, buffers, X, y, name, h=1e-6):
    grad = np.zeros_like(params[name])
    for idx in np.ndindex(grad.shape):
        plus = {k: v.copy() for k, v in params.items()}
        minus = {k: v.copy() for k, v in params.items()}
        plus[name][idx] += h
        minus[name][idx] -= h
        grad[idx] = (direct_loss(spec, plus, buffers, X, y)
                     - direct_loss(spec, minus, buffers, X, y)) / (2 * h)
    return grad


@pytest.mark.parametrize("spec", [
    ModelSpec(4, (5, 3), 3, dtype="float64"),
    ModelSpec(4, (6,), 2, batch_norm=False, dtype="float64"),
    ModelSpec(4, (5, 4), 3, activation="tanh", dtype="float64"),
])
def test_health_matches_a_direct_computation(spec):
    rng = np.random.default_rng(3)
    params, buffers = init_params(spec, rng)
    for name in params:  # move off the initial values: biases, gamma and beta not trivial
        params[name] = params[name] + 0.3 * rng.standard_normal(params[name].shape)
    for name in buffers:
        buffers[name] = np.abs(buffers[name] + 0.5 * rng.standard_normal(buffers[name].shape))
    prev = {k: v - 0.05 * rng.standard_normal(v.shape) for k, v in params.items()}
    X = rng.standard_normal((30, 4))
    y = rng.integers(0, spec.n_classes, 30)
    health = epoch_health(spec, params, buffers, X, y, prev_params=prev)

    assert health["rows"] == 30 and layer_count(health) == spec.n_layers
    zs, act_inputs, _ = direct_forward(spec, params, buffers, X, training=True)
    grad_sq = 0.0
    for i in range(1, spec.n_layers + 1):
        W = params[f"W{i}"]
        g = numeric_grad(spec, params, buffers, X, y, f"W{i}")
        assert health[health_key("grad_norm", i)] == pytest.approx(np.linalg.norm(g), rel=1e-5)
        assert health[health_key("weight_norm", i)] == pytest.approx(np.linalg.norm(W))
        assert health[health_key("update_ratio", i)] == pytest.approx(
            np.linalg.norm(W - prev[f"W{i}"]) / np.linalg.norm(prev[f"W{i}"]))
        assert health[health_key("pre_mean", i)] == pytest.approx(zs[i - 1].mean(), abs=1e-12)
        assert health[health_key("pre_std", i)] == pytest.approx(zs[i - 1].std())
    for name in params:
        grad_sq += np.sum(numeric_grad(spec, params, buffers, X, y, name) ** 2)
    assert health["grad_norm"] == pytest.approx(math.sqrt(grad_sq), rel=1e-5)
    weights = [k for k in params if k.startswith("W")]
    assert health["update_ratio"] == pytest.approx(
        math.sqrt(sum(np.sum((params[k] - prev[k]) ** 2) for k in weights))
        / math.sqrt(sum(np.sum(prev[k] ** 2) for k in weights)))

    for i in range(1, len(spec.hidden) + 1):
        dead = health[health_key("dead", i)]
        if spec.activation == "relu":
            assert dead == pytest.approx(np.mean(np.all(act_inputs[i - 1] <= 0, axis=0)))
        else:
            assert dead is None
        if spec.batch_norm:
            z, rm, rv = zs[i - 1], buffers[f"running_mean{i}"], buffers[f"running_var{i}"]
            assert health[health_key("bn_shift", i)] == pytest.approx(
                np.mean(np.abs(z.mean(axis=0) - rm) / np.sqrt(rv + BN_EPS)))
            assert health[health_key("bn_var_ratio", i)] == pytest.approx(
                np.exp(np.mean(np.abs(np.log((z.var(axis=0) + BN_EPS) / (rv + BN_EPS))))))
        else:
            assert health_key("bn_shift", i) not in health
    _, _, eval_scores = direct_forward(spec, params, buffers, X, training=False)
    proba = direct_proba(spec, eval_scores)
    assert health["max_prob"] == pytest.approx(proba.max(axis=1).mean())
    wrong_and_sure = (proba.max(axis=1) >= CONFIDENT) & (proba.argmax(axis=1) != y)
    assert health["confident_wrong"] == pytest.approx(wrong_and_sure.mean())


def test_a_net_built_with_dead_relus():
    """Layer 2 has 5 of its 8 units pushed far below zero: 62.5% dead, whatever the input."""
    spec = ModelSpec(3, (6, 8), 3, batch_norm=False, dtype="float64")
    params, buffers = init_params(spec, np.random.default_rng(0))
    params["b2"][:5] = -1e3
    X = np.random.default_rng(1).standard_normal((50, 3))
    y = np.arange(50) % 3
    health = epoch_health(spec, params, buffers, X, y)
    zs, _, _ = direct_forward(spec, params, buffers, X, training=True)
    assert health["dead_2"] == 5 / 8
    assert health["dead_1"] == np.mean(np.all(zs[0] <= 0, axis=0))
    assert health["dead"] == (5 + health["dead_1"] * 6) / 14
    assert health["update_ratio"] is None and health["update_ratio_1"] is None  # no prev


def test_a_saturated_softmax():
    """Output weights scaled 1e5 times: every prediction is sure of itself, right or wrong."""
    spec = ModelSpec(4, (8,), 3, activation="tanh", dtype="float64")
    params, buffers = init_params(spec, np.random.default_rng(0))
    params["W2"] *= 1e5
    X = np.random.default_rng(2).standard_normal((40, 4))
    y = np.random.default_rng(3).integers(0, 3, 40)
    health = epoch_health(spec, params, buffers, X, y)
    _, _, scores = direct_forward(spec, params, buffers, X, training=False)
    proba = direct_proba(spec, scores)
    wrong = proba.argmax(axis=1) != y
    assert health["max_prob"] > 0.99
    assert health["confident_wrong"] == pytest.approx(
        np.mean(wrong & (proba.max(axis=1) >= CONFIDENT)))
    assert health["confident_wrong"] >= 0.4  # a random net is wrong about 2 in 3 times


def test_exploding_gradients_at_a_huge_learning_rate():
    """Momentum at learning rate 1 without batch norm: gradient norms in the thousands, where
    the same net at 0.01 stays near 1; every stored value is finite or None."""
    data = blobs(120, 40, 4, 3, seed=5)
    spec = ModelSpec(4, (16, 16), 3, batch_norm=False)

    def grad_norms(lr):
        config = TrainConfig(optimizer="momentum", learning_rate=lr, batch_size=8)
        result = train_segment(new_state(spec, 0), config, data, 6, health_every=1)
        for m in result.metrics:
            assert all(v is None or math.isfinite(v) for v in m["health"].values())
        return [m["health"]["grad_norm"] for m in result.metrics], config

    huge, config = grad_norms(1.0)
    sane, _ = grad_norms(0.01)
    assert len(huge) == 6 and None not in huge
    assert max(huge) > 1e3 and max(huge) > 100 * max(sane)
    # the first epoch's numbers are those of a direct call on the state after it
    one = train_segment(new_state(spec, 0), config, data, 1)
    direct = epoch_health(spec, one.state.params, one.state.buffers, data.X_val, data.y_val,
                          prev_params=new_state(spec, 0).params)
    assert huge[0] == pytest.approx(direct["grad_norm"])


def test_non_finite_values_become_none():
    spec = ModelSpec(3, (4,), 2, batch_norm=False)
    params, buffers = init_params(spec, np.random.default_rng(0))
    params["W1"][0, 0] = np.inf
    X = np.ones((10, 3), np.float32)
    health = epoch_health(spec, params, buffers, X, np.zeros(10, np.int64), prev_params=params)
    assert health["weight_norm_1"] is None and health["grad_norm"] is None
    assert all(v is None or math.isfinite(v) for v in health.values())


def test_train_segment_with_health_trains_the_same_and_reports_on_schedule(tiny_data):
    spec = ModelSpec(5, (6, 4), 3)
    config = TrainConfig(batch_size=16, dropout=0.3)
    plain = train_segment(new_state(spec, 1), config, tiny_data, 5)
    watched = train_segment(new_state(spec, 1), config, tiny_data, 5, health_every=2)
    for name, value in plain.state.params.items():
        assert value.tobytes() == watched.state.params[name].tobytes()
    assert plain.state.rng_state == watched.state.rng_state
    stripped = [{k: v for k, v in m.items() if k != "health"} for m in watched.metrics]
    assert without_seconds(stripped) == without_seconds(plain.metrics)
    assert [m["epoch"] for m in watched.metrics if "health" in m] == [2, 4]
    assert watched.metrics[1]["health"]["rows"] == min(HEALTH_ROWS, len(tiny_data.y_val))
    # epochs are numbered over the whole run: a resumed segment keeps the schedule
    rest = train_segment(watched.state, config, tiny_data, 3, health_every=2)
    assert [m["epoch"] for m in rest.metrics if "health" in m] == [6, 8]


def test_auto_health_measures_epoch_1_a_stride_and_the_last_if_asked(tiny_data):
    spec = ModelSpec(5, (6, 4), 3)
    config = TrainConfig(batch_size=16)
    plain = train_segment(new_state(spec, 1), config, tiny_data, 6)
    auto = train_segment(new_state(spec, 1), config, tiny_data, 6, health_every="auto",
                         health_last=True)
    assert auto.state.params["W1"].tobytes() == plain.state.params["W1"].tobytes()
    measured = [m["epoch"] for m in auto.metrics if "health" in m]
    assert measured[0] == 1 and measured[-1] == 6
    assert [m["epoch"] for m in train_segment(
        auto.state, config, tiny_data, 1, health_every="auto", health_last=True).metrics
        if "health" in m] == [7]


def test_the_auto_cadence_spends_a_share_of_the_training_time():
    cadence = Cadence(AUTO, n_epochs=100)
    assert cadence.due(0, 1)  # epoch 1, and nothing known yet
    cadence.trained(0.01)
    cadence.measured(0.002)  # 2 ms a measurement, 10 ms an epoch: 3% allows one in 6.7
    assert cadence.stride() == 8  # the power of two at or above
    picked = []
    for done in range(1, 100):
        if cadence.due(done, done + 1):
            picked.append(done + 1)
            cadence.trained(0.01)
            cadence.measured(0.002)
        else:
            cadence.trained(0.01)
    assert picked == list(range(8, 101, 8))  # no forced end: this cadence was not asked
    last = Cadence(AUTO, n_epochs=5, last=True)
    last.trained(0.01), last.measured(0.002)
    assert [e for e in range(2, 6) if last.due(e - 1, e)] == [5]
    assert Cadence(3, 10).due(0, 3) and not Cadence(3, 10).due(0, 4)
    assert not Cadence(0, 10).due(0, 1) and not Cadence(0, 10, last=True).due(9, 10)


def test_the_auto_stride_follows_the_epoch_numbers_across_segments():
    """A process remembers a workload's costs: the next segment does not re-measure its first
    epoch, so short segments (a loaded machine) do not multiply the measurements."""
    key = ("a workload", 1)
    first = Cadence(AUTO, n_epochs=3, key=key)
    assert first.due(0, 1)
    first.trained(0.01), first.measured(0.004)  # stride 16
    later = Cadence(AUTO, n_epochs=3, key=key)
    assert later.stride() == 16
    due = [e for e in range(17, 50) if later.due(0, e)]
    assert due == [32, 48]


def test_bad_inputs_name_the_field(tiny_data):
    spec = ModelSpec(5, (6,), 3)
    state = new_state(spec, 0)
    with pytest.raises(ValueError, match="health_every must be an integer >= 0"):
        train_segment(state, TrainConfig(), tiny_data, 1, health_every=-1)
    with pytest.raises(ValueError, match="health_every must be .* or 'auto', got 'often'"):
        train_segment(state, TrainConfig(), tiny_data, 1, health_every="often")
    with pytest.raises(ValueError, match=r"X must have shape \(N >= 1, 5\)"):
        epoch_health(spec, state.params, state.buffers, np.zeros((3, 4)), np.zeros(3, int))


def test_the_auto_cadence_counts_cpu_time_not_waiting(tiny_data, monkeypatch):
    """A loaded machine stretches an epoch's wall time (the process waits for a core) but not
    its CPU time. Here each epoch waits 100 ms (a sleep, as a preempted worker) for ~1 ms of
    work: on the wall clock health would look 100 times cheaper than it is and be measured
    nearly every epoch; counted in CPU time it stays near its share (the segment's ends)."""
    from engine.nn import train as train_module

    run_epoch = train_module.Trainer.run_epoch

    def waiting(self, rng, lr):
        time.sleep(0.1)
        return run_epoch(self, rng, lr)

    monkeypatch.setattr(train_module.Trainer, "run_epoch", waiting)
    spec = ModelSpec(5, (6, 4), 3)
    result = train_segment(new_state(spec, 1), TrainConfig(batch_size=16), tiny_data, 12,
                           health_every="auto", health_last=True)
    measured = [m["epoch"] for m in result.metrics if "health" in m]
    assert measured[0] == 1 and measured[-1] == 12
    assert len(measured) <= 3, measured


def test_float32_norms_of_huge_but_finite_values_stay_finite():
    """Squares of 1e20 overflow float32; the norm is then taken in float64, not dropped."""
    spec = ModelSpec(3, (4,), 3, batch_norm=False)
    params, buffers = init_params(spec, np.random.default_rng(0))
    params["W2"] = np.full_like(params["W2"], 1e20)
    health = epoch_health(spec, params, buffers, np.ones((6, 3), np.float32), np.zeros(6, int))
    assert health["weight_norm_2"] == pytest.approx(1e20 * math.sqrt(12), rel=1e-6)
