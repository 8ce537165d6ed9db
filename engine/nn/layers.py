"""Reference layers: forward/backward pairs in the CS231n style.

Every forward returns ``(out, cache)`` and every backward takes ``(dout, cache)``. These
functions allocate freely and favour clarity: they are the oracle that the numerical gradient
checks judge and that the allocation-free training step (``engine.nn.fast``) is tested against.
They work in whatever float dtype they are given (float32 for speed, float64 for checks).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LEAKY_SLOPE = 0.01
BN_EPS = 1e-5

Cache = Any


def affine_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, Cache]:
    """Affine map ``x @ W (+ b)``.

    x (N, D), W (D, M), b (M,) or None -> out (N, M).
    """
    out = x @ W
    if b is not None:
        out = out + b
    return out, (x, W, b is not None)


def affine_backward(
    dout: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dout (N, M) -> dx (N, D), dW (D, M), db (M,) or None when the layer has no bias."""
    x, W, has_bias = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0) if has_bias else None
    return dx, dW, db


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    *,
    momentum: float,
    training: bool,
    eps: float = BN_EPS,
) -> tuple[np.ndarray, Cache, np.ndarray, np.ndarray]:
    """Batch normalisation over the batch axis.

    x (N, D), gamma/beta/running_mean/running_var (D,) -> out (N, D), cache, new running
    mean (D,), new running var (D,). Training mode normalises with the batch mean and the
    biased batch variance and returns ``momentum * old + (1 - momentum) * batch_stat``;
    evaluation mode normalises with the running averages and returns them unchanged.
    """
    if not training:
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        return gamma * x_hat + beta, None, running_mean, running_var
    mu = x.mean(axis=0)  # (D,)
    xc = x - mu  # (N, D)
    var = (xc * xc).mean(axis=0)  # (D,) biased
    inv_std = 1.0 / np.sqrt(var + eps)  # (D,)
    x_hat = xc * inv_std  # (N, D)
    out = gamma * x_hat + beta
    new_mean = momentum * running_mean + (1 - momentum) * mu
    new_var = momentum * running_var + (1 - momentum) * var
    return out, (x_hat, inv_std, gamma), new_mean, new_var


def batchnorm_backward(
    dout: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,) (training-mode forward only).

    Uses the compact form dx = gamma * inv_std / N * (N dout - dbeta - x_hat * dgamma).
    """
    if cache is None:
        raise ValueError("batchnorm_backward needs the cache of a training-mode forward")
    x_hat, inv_std, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma * inv_std / n) * (n * dout - dbeta - x_hat * dgamma)
    return dx, dgamma, dbeta


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """max(x, 0) elementwise; x any shape."""
    return np.maximum(x, 0), x


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    return dout * (cache > 0)


def leaky_relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """x for x > 0, 0.01 x otherwise; x any shape."""
    return np.where(x > 0, x, LEAKY_SLOPE * x), x


def leaky_relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    return dout * np.where(cache > 0, 1.0, LEAKY_SLOPE).astype(dout.dtype)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    return dout * (1 - cache * cache)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow: 0.5 * (1 + tanh(x / 2))."""
    return 0.5 * (1 + np.tanh(0.5 * x))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    return dout * cache * (1 - cache)


def dtype_scalar(value: float, dtype: Any) -> Any:
    return np.dtype(dtype).type(value)


def dropout_mask(
    shape: tuple[int, ...], p_drop: float, rng: np.random.Generator, dtype: Any
) -> np.ndarray:
    """Inverted-dropout mask: 0 for a dropped unit, 1/(1-p) for a kept one.

    Draws ``rng.random(shape, dtype)`` and keeps the units whose draw is >= p_drop; the
    allocation-free training step draws the same numbers in the same way.
    """
    u = rng.random(shape, dtype=dtype)
    return (u >= p_drop).astype(dtype) * dtype_scalar(1.0 / (1.0 - p_drop), dtype)


def dropout_forward(
    x: np.ndarray,
    p_drop: float,
    *,
    training: bool,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, Cache]:
    """Inverted dropout; x any shape.

    In training mode each unit is dropped with probability ``p_drop`` and kept units are
    scaled by ``1/(1-p_drop)``, so evaluation mode is the identity. A given ``mask`` (same
    shape as x, already scaled) is used as is, which makes gradient checks deterministic.
    """
    if not 0.0 <= p_drop < 1.0:
        raise ValueError(f"p_drop must be in [0, 1), got {p_drop}")
    if not training or (p_drop == 0.0 and mask is None):
        return x, None
    if mask is None:
        if rng is None:
            raise ValueError("dropout_forward in training mode needs rng or mask")
        mask = dropout_mask(x.shape, p_drop, rng, x.dtype)
    return x * mask, mask


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    return dout if cache is None else dout * cache


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}
