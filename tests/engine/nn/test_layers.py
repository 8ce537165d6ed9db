"""Reference layers: every backward checked against centred differences, plus invariants."""

from __future__ import annotations

import numpy as np
import pytest

from engine.nn import layers
from engine.nn.gradcheck import numerical_gradient_array, rel_error

SHAPES = [(4, 3, 5), (7, 6, 2), (1, 4, 3), (10, 2, 8)]  # (N, D, M)
TOL = 1e-7


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random values with |x| >= 0.1, so a finite difference never straddles a kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


@pytest.mark.parametrize("N,D,M", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_affine_backward_matches_numerical(rng, N, D, M, bias):
    x, W = rng.standard_normal((N, D)), rng.standard_normal((D, M))
    b = rng.standard_normal(M) if bias else None
    dout = rng.standard_normal((N, M))
    out, cache = layers.affine_forward(x, W, b)
    np.testing.assert_allclose(out, x @ W + (0 if b is None else b))
    dx, dW, db = layers.affine_backward(dout, cache)
    f = lambda: layers.affine_forward(x, W, b)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < TOL
    assert rel_error(dW, numerical_gradient_array(f, W, dout)) < TOL
    if bias:
        assert rel_error(db, numerical_gradient_array(f, b, dout)) < TOL
    else:
        assert db is None


@pytest.mark.parametrize("N,D", [(5, 3), (8, 6), (3, 4), (16, 1)])  # N=2: x_hat is +-1, dx ~ 0
def test_batchnorm_backward_matches_numerical(rng, N, D):
    x = rng.standard_normal((N, D)) * 3 + 1
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    rm, rv = np.zeros(D), np.ones(D)
    dout = rng.standard_normal((N, D))

    def f():
        return layers.batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.9, training=True)[0]

    _, cache, _, _ = layers.batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.9, training=True)
    dx, dgamma, dbeta = layers.batchnorm_backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < TOL
    assert rel_error(dgamma, numerical_gradient_array(f, gamma, dout)) < TOL
    assert rel_error(dbeta, numerical_gradient_array(f, beta, dout)) < TOL


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("shape", [(4, 5), (1, 3), (9, 2)])
def test_activation_backward_matches_numerical(rng, name, shape):
    forward, backward = layers.ACTIVATIONS[name]
    x = away_from_zero(rng, shape)
    dout = rng.standard_normal(shape)
    dx = backward(dout, forward(x)[1])
    assert rel_error(dx, numerical_gradient_array(lambda: forward(x)[0], x, dout)) < TOL


@pytest.mark.parametrize("shape", [(6, 4), (3, 7)])
def test_dropout_backward_matches_numerical_with_a_fixed_mask(rng, shape):
    x = rng.standard_normal(shape)
    mask = layers.dropout_mask(shape, 0.4, rng, np.float64)
    dout = rng.standard_normal(shape)
    _, cache = layers.dropout_forward(x, 0.4, training=True, mask=mask)
    dx = layers.dropout_backward(dout, cache)

    def f():
        return layers.dropout_forward(x, 0.4, training=True, mask=mask)[0]

    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < TOL


def test_activation_values(rng):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(layers.relu_forward(x)[0], [0, 0, 0, 0.5, 3])
    np.testing.assert_allclose(layers.leaky_relu_forward(x)[0], [-0.02, -0.005, 0, 0.5, 3])
    np.testing.assert_allclose(layers.sigmoid_forward(x)[0], 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(layers.tanh_forward(x)[0], np.tanh(x))
    big = np.array([-1e4, 1e4], dtype=np.float32)
    np.testing.assert_array_equal(layers.sigmoid(big), [0, 1])  # no overflow warning either


def test_batchnorm_training_normalises_each_feature(rng):
    x = rng.standard_normal((200, 6)) * rng.uniform(0.1, 50, 6) + rng.uniform(-100, 100, 6)
    D = x.shape[1]
    out, _, _, _ = layers.batchnorm_forward(
        x, np.ones(D), np.zeros(D), np.zeros(D), np.ones(D), momentum=0.9, training=True
    )
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-3)  # var/(var+eps)
    gamma, beta = rng.uniform(0.5, 2, D), rng.standard_normal(D)
    scaled, _, _, _ = layers.batchnorm_forward(
        x, gamma, beta, np.zeros(D), np.ones(D), momentum=0.9, training=True
    )
    np.testing.assert_allclose(scaled, gamma * out + beta, atol=1e-10)


def test_batchnorm_running_averages_and_evaluation_mode(rng):
    x = rng.standard_normal((50, 3)) * 4 + 2
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    gamma, beta = np.ones(3), np.zeros(3)
    _, _, new_m, new_v = layers.batchnorm_forward(
        x, gamma, beta, rm, rv, momentum=0.8, training=True
    )
    np.testing.assert_allclose(new_m, 0.8 * rm + 0.2 * x.mean(axis=0))
    np.testing.assert_allclose(new_v, 0.8 * rv + 0.2 * x.var(axis=0))  # biased variance
    out, cache, same_m, same_v = layers.batchnorm_forward(
        x, gamma, beta, new_m, new_v, momentum=0.8, training=False
    )
    assert cache is None and same_m is new_m and same_v is new_v
    np.testing.assert_allclose(out, (x - new_m) / np.sqrt(new_v + layers.BN_EPS))


def test_dropout_is_inverted_and_identity_in_evaluation(rng):
    x = np.ones((400, 50))
    out, mask = layers.dropout_forward(x, 0.3, training=True, rng=rng)
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(out[kept], 1 / 0.7)
    assert abs(out.mean() - 1) < 0.03  # expectation preserved
    same, cache = layers.dropout_forward(x, 0.3, training=False, rng=rng)
    assert same is x and cache is None
    with pytest.raises(ValueError, match=r"p_drop must be in \[0, 1\), got 1.0"):
        layers.dropout_forward(x, 1.0, training=True, rng=rng)
