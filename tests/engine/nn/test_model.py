"""ModelSpec, parameter layout, initialisation and the whole MLP's gradient."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.nn import ModelSpec, init_params, predict_proba
from engine.nn.gradcheck import numerical_gradient, rel_error
from engine.nn.init import he_init, xavier_init
from engine.nn.layers import dropout_mask
from engine.nn.model import forward, loss_and_grads

TOL = 1e-7


def test_spec_json_round_trip_and_layout():
    spec = ModelSpec(n_inputs=4, hidden=[8, 6], n_classes=3, activation="tanh", init="xavier")
    assert spec.hidden == (8, 6)
    d = json.loads(json.dumps(spec.to_dict()))
    assert ModelSpec.from_dict(d) == spec
    params, buffers = init_params(spec, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (4, 8), "gamma1": (8,), "beta1": (8,), "W2": (8, 6), "gamma2": (6,),
        "beta2": (6,), "W3": (6, 3), "b3": (3,),
    }
    assert list(buffers) == ["running_mean1", "running_var1", "running_mean2", "running_var2"]
    no_bn = ModelSpec(4, (8,), 2, batch_norm=False)
    params, buffers = init_params(no_bn, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (4, 8), "b1": (8,), "W2": (8, 1), "b2": (1,)}  # 2 classes: one output unit
    assert buffers == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_inputs=0), r"n_inputs must be an integer >= 1, got 0"),
    (dict(hidden=(4, 0)), r"hidden units must be an integer >= 1, got 0"),
    (dict(n_classes=1), r"n_classes must be an integer >= 2, got 1"),
    (dict(activation="gelu"), r"activation must be one of relu, leaky_relu, tanh, sigmoid"),
    (dict(init="zeros"), r"init must be one of he, xavier; got 'zeros'"),
    (dict(dtype="float16"), r"dtype must be one of float32, float64"),
    (dict(batch_norm="yes"), r"batch_norm must be true or false"),
])
def test_spec_validation_names_field_and_value(kwargs, message):
    base = dict(n_inputs=3, hidden=(4,), n_classes=3)
    with pytest.raises(ValueError, match=message):
        ModelSpec(**{**base, **kwargs})
    with pytest.raises(ValueError, match=r"unknown ModelSpec key\(s\) 'width'"):
        ModelSpec.from_dict({**base, "width": 3})


def test_initialisers_scale_and_use_the_generator():
    a = he_init(400, 300, np.random.default_rng(1))
    assert a.dtype == np.float32
    assert a.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert xavier_init(400, 300, np.random.default_rng(1)).std() == pytest.approx(
        np.sqrt(2 / 700), rel=0.02)
    np.testing.assert_array_equal(a, he_init(400, 300, np.random.default_rng(1)))
    # float32 and float64 models from the same seed start from the same (rounded) weights
    w64 = he_init(5, 4, np.random.default_rng(3), "float64")
    np.testing.assert_array_equal(he_init(5, 4, np.random.default_rng(3)), w64.astype(np.float32))


CASES = [
    # (n_inputs, hidden, n_classes, activation, batch_norm, dropout, l2, N)
    (4, (5,), 3, "relu", True, 0.0, 0.0, 6),
    (3, (6, 5), 4, "relu", False, 0.0, 0.1, 7),
    (5, (4, 4), 2, "tanh", True, 0.3, 0.05, 8),
    (2, (7,), 2, "sigmoid", False, 0.5, 0.0, 5),
    (6, (5, 3), 5, "leaky_relu", True, 0.2, 0.01, 9),
    (3, (), 3, "relu", True, 0.0, 0.2, 4),  # no hidden layer: softmax regression
]


@pytest.mark.parametrize("n_in, hidden, C, act, bn, p, l2, N", CASES)
def test_whole_mlp_gradient_matches_numerical(rng, n_in, hidden, C, act, bn, p, l2, N):
    spec = ModelSpec(n_in, hidden, C, activation=act, batch_norm=bn, dtype="float64")
    params, buffers = init_params(spec, np.random.default_rng(5))
    for name in params:  # non-trivial gamma, beta, biases
        if not name.startswith("W"):
            params[name] = params[name] + rng.standard_normal(params[name].shape) * 0.3
    X = rng.standard_normal((N, n_in))
    y = rng.integers(0, C, N)
    masks = {i: dropout_mask((N, h), p, rng, np.float64) for i, h in enumerate(hidden, 1)}

    def loss():
        return loss_and_grads(spec, params, buffers, X, y, l2=l2, dropout=p, masks=masks)[0]

    _, grads, _ = loss_and_grads(spec, params, buffers, X, y, l2=l2, dropout=p, masks=masks)
    assert set(grads) == set(params)
    for name, p_arr in params.items():
        assert rel_error(grads[name], numerical_gradient(loss, p_arr)) < TOL, name


def test_predict_proba_uses_running_averages(rng):
    spec = ModelSpec(3, (4,), 3)
    params, buffers = init_params(spec, rng)
    X = rng.standard_normal((10, 3)).astype(np.float32)
    proba = predict_proba(spec, params, buffers, X)
    assert proba.shape == (10, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    # evaluation mode: one row's prediction does not depend on the others
    np.testing.assert_allclose(predict_proba(spec, params, buffers, X[:1]), proba[:1], rtol=1e-6)
    shifted = dict(buffers, running_mean1=buffers["running_mean1"] + 1)
    assert not np.allclose(predict_proba(spec, params, shifted, X), proba)
    binary = ModelSpec(3, (4,), 2)
    params, buffers = init_params(binary, rng)
    p2 = predict_proba(binary, params, buffers, X)
    scores, _, _ = forward(binary, params, buffers, X, training=False)
    np.testing.assert_allclose(p2[:, 1], 1 / (1 + np.exp(-scores[:, 0])), rtol=1e-5)
    np.testing.assert_allclose(p2.sum(axis=1), 1, rtol=1e-6)
