"""Losses: gradients against centred differences, stability for huge scores, L2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.nn.gradcheck import numerical_gradient, rel_error
from engine.nn.losses import l2_penalty, sigmoid_cross_entropy, softmax, softmax_cross_entropy

TOL = 1e-7


@pytest.mark.parametrize("N,C", [(5, 3), (8, 10), (1, 4), (12, 2)])
def test_softmax_cross_entropy_gradient(rng, N, C):
    scores = rng.standard_normal((N, C)) * 3
    y = rng.integers(0, C, N)
    loss, dscores = softmax_cross_entropy(scores, y)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(scores, y)[0], scores)
    assert rel_error(dscores, numeric) < TOL
    assert loss == pytest.approx(-np.mean(np.log(softmax(scores)[np.arange(N), y])))


@pytest.mark.parametrize("shape", [(6,), (9, 1), (1,)])
def test_sigmoid_cross_entropy_gradient(rng, shape):
    logits = rng.standard_normal(shape) * 3
    y = rng.integers(0, 2, shape[0])
    loss, dlogits = sigmoid_cross_entropy(logits, y)
    assert dlogits.shape == logits.shape
    numeric = numerical_gradient(lambda: sigmoid_cross_entropy(logits, y)[0], logits)
    assert rel_error(dlogits, numeric) < TOL
    p = 1 / (1 + np.exp(-logits.reshape(-1)))
    assert loss == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_binary_softmax_and_sigmoid_agree(rng):
    """A sigmoid on z is a softmax on [0, z]."""
    z = rng.standard_normal(7) * 4
    y = rng.integers(0, 2, 7)
    s_loss, _ = sigmoid_cross_entropy(z, y)
    m_loss, _ = softmax_cross_entropy(np.stack([np.zeros(7), z], axis=1), y)
    assert s_loss == pytest.approx(m_loss, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    scores=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 6)),
                  elements=st.floats(-1e4, 1e4)),
    data=st.data(),
)
def test_softmax_is_stable_for_huge_scores(scores, data):
    n, c = scores.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    probs = softmax(scores)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-12)
    for dtype in (np.float64, np.float32):
        loss, dscores = softmax_cross_entropy(scores.astype(dtype), y)
        assert np.isfinite(loss) and loss >= 0
        assert np.isfinite(dscores).all()
        np.testing.assert_allclose(dscores.sum(axis=1), 0, atol=1e-5)  # probs - onehot


@settings(max_examples=60, deadline=None)
@given(z=arrays(np.float32, st.integers(1, 8), elements=st.floats(-1e4, 1e4, width=32)))
def test_sigmoid_cross_entropy_is_stable_for_huge_logits(z):
    y = (np.arange(len(z)) % 2).astype(np.int64)
    loss, dz = sigmoid_cross_entropy(z, y)
    assert np.isfinite(loss) and loss >= 0
    assert np.isfinite(dz).all() and (np.abs(dz) <= 1 / len(z) + 1e-7).all()


def test_l2_penalty_covers_weights_only(rng):
    params = {"W1": rng.standard_normal((3, 4)), "gamma1": rng.standard_normal(4),
              "beta1": rng.standard_normal(4), "W2": rng.standard_normal((4, 2)),
              "b2": rng.standard_normal(2)}
    loss, grads = l2_penalty(params, 0.3)
    assert set(grads) == {"W1", "W2"}
    assert loss == pytest.approx(0.15 * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2)))
    for name in grads:
        numeric = numerical_gradient(lambda: l2_penalty(params, 0.3)[0], params[name])
        assert rel_error(grads[name], numeric) < TOL
