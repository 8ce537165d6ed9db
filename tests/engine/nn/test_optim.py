"""Update rules against their textbook formulas, learning-rate decay, TrainConfig validation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.nn import TrainConfig, learning_rate_at
from engine.nn.optim import LAG_LIMIT, RULES, SLOTS, settle

CFG = TrainConfig(momentum=0.8, beta1=0.85, beta2=0.99, epsilon=1e-6)


def textbook(name: str, w, dw, slots, lr, t, c: TrainConfig):
    """The allocating formulas, for comparison."""
    if name == "sgd":
        return w - lr * dw, ()
    if name == "momentum":
        v = c.momentum * slots[0] - lr * dw
        return w + v, (v,)
    if name == "rmsprop":
        cache = c.beta2 * slots[0] + (1 - c.beta2) * dw**2
        return w - lr * dw / (np.sqrt(cache) + c.epsilon), (cache,)
    m = c.beta1 * slots[0] + (1 - c.beta1) * dw
    v = c.beta2 * slots[1] + (1 - c.beta2) * dw**2
    m_hat, v_hat = m / (1 - c.beta1**t), v / (1 - c.beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + c.epsilon), (m, v)


@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("shape, order", [((7,), "C"), ((3, 4), "C"), ((3, 4), "F")])
def test_rules_follow_their_formulas_over_several_steps(rng, name, shape, order):
    """Flat, 2-D, and Fortran-ordered arrays (BLAS cannot update those in place: the rules
    take their NumPy path)."""
    w = np.asarray(rng.standard_normal(shape), order=order)
    slots = tuple(np.zeros(shape, order=order) for _ in SLOTS[name])
    ref_w, ref_slots = w.copy(), tuple(s.copy() for s in slots)
    scratch = np.empty(shape, order=order)
    lag = 0
    for t in range(1, 6):
        dw = np.asarray(rng.standard_normal(shape), order=order)
        lr = 0.1 / t
        ref_w, ref_slots = textbook(name, ref_w, dw, ref_slots, lr, t, CFG)
        lag = RULES[name](w, dw.copy(order="A"), slots, lr, t, CFG, scratch, lag)
        assert lag == (t if name == "adam" else 0)  # only Adam defers its decays
        np.testing.assert_allclose(w, ref_w, rtol=1e-12, atol=1e-14)
        settled = tuple(s.copy() for s in slots)
        settle(name, settled, lag, CFG)
        for s, r in zip(settled, ref_slots):
            np.testing.assert_allclose(s, r, rtol=1e-12, atol=1e-14)
    settle(name, slots, lag, CFG)  # settling in place, then carrying on from lag 0
    dw = rng.standard_normal(shape)
    ref_w, ref_slots = textbook(name, ref_w, dw, ref_slots, 0.01, 6, CFG)
    settle(name, slots, RULES[name](w, dw, slots, 0.01, 6, CFG, scratch, 0), CFG)
    np.testing.assert_allclose(w, ref_w, rtol=1e-12, atol=1e-14)
    for s, r in zip(slots, ref_slots):
        np.testing.assert_allclose(s, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("beta1, beta2", [(0.0, 0.999), (0.9, 0.0), (0.5, 0.5), (0.999, 0.99)])
def test_adam_defers_decays_only_as_far_as_they_stay_in_range(rng, beta1, beta2):
    """Over 100 steps the stored slots never exceed the true ones by more than 1/LAG_LIMIT,
    a zero beta defers nothing, and the weights follow the textbook throughout."""
    config = TrainConfig(beta1=beta1, beta2=beta2)
    w = rng.standard_normal(20)
    slots, scratch, lag = (np.zeros(20), np.zeros(20)), np.empty(20), 0
    ref_w, ref_slots = w.copy(), (np.zeros(20), np.zeros(20))
    for t in range(1, 101):
        dw = rng.standard_normal(20)
        ref_w, ref_slots = textbook("adam", ref_w, dw, ref_slots, 1e-3, t, config)
        lag = RULES["adam"](w, dw, slots, 1e-3, t, config, scratch, lag)
        if min(beta1, beta2) == 0:
            assert lag == 0
        assert min(beta1, beta2) ** lag >= LAG_LIMIT
    np.testing.assert_allclose(w, ref_w, rtol=1e-10)
    settle("adam", slots, lag, config)
    for s, r in zip(slots, ref_slots):
        np.testing.assert_allclose(s, r, rtol=1e-10, atol=1e-300)


def test_adam_first_step_moves_each_weight_by_about_lr(rng):
    w = rng.standard_normal(50).astype(np.float32)
    before = w.copy()
    slots = (np.zeros(50, np.float32), np.zeros(50, np.float32))
    RULES["adam"](w, rng.standard_normal(50).astype(np.float32), slots, 1e-2, 1, TrainConfig(),
                  np.empty(50, np.float32))
    np.testing.assert_allclose(np.abs(w - before), 1e-2, rtol=1e-4)  # bias correction


def test_learning_rate_decay_schedules():
    assert learning_rate_at(TrainConfig(learning_rate=0.1), 7) == 0.1
    inverse = TrainConfig(learning_rate=0.1, decay="inverse", decay_rate=0.5)
    assert learning_rate_at(inverse, 0) == 0.1
    assert learning_rate_at(inverse, 4) == pytest.approx(0.1 / 3)
    exponential = TrainConfig(learning_rate=0.1, decay="exponential", decay_rate=0.9)
    assert learning_rate_at(exponential, 3) == pytest.approx(0.1 * 0.9**3)
    step = TrainConfig(learning_rate=0.1, decay="step", decay_rate=0.5, decay_every=3)
    assert [learning_rate_at(step, e) for e in range(7)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("kwargs, message", [
    (dict(learning_rate=-1.0), r"^learning_rate must be > 0, got -1.0$"),
    (dict(learning_rate=float("nan")), r"learning_rate must be > 0, got nan"),
    (dict(optimizer="adagrad"),
     r"optimizer must be one of sgd, momentum, rmsprop, adam; got 'adagrad'"),
    (dict(batch_size=0), r"batch_size must be an integer >= 1, got 0"),
    (dict(batch_size=3.5), r"batch_size must be an integer >= 1, got 3.5"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(beta2=1.0), r"beta2 must be in \[0, 1\), got 1.0"),
    (dict(l2=-0.1), r"l2 must be >= 0, got -0.1"),
    (dict(decay="cosine"), r"decay must be one of none, inverse, exponential, step"),
    (dict(decay="exponential"), r"decay_rate \(for decay='exponential'\) must be in \(0, 1\]"),
    (dict(decay_every=0), r"decay_every must be an integer >= 1, got 0"),
    (dict(epsilon=0), r"epsilon must be > 0, got 0.0"),
])
def test_config_validation_names_field_value_and_valid_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_config_round_trip_and_unknown_keys():
    config = TrainConfig(learning_rate=0.01, optimizer="momentum", batch_size=32.0)
    assert config.batch_size == 32 and isinstance(config.batch_size, int)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) 'lr'; valid keys are"):
        TrainConfig.from_dict({"lr": 0.1})
