"""Losses returning ``(loss, dscores)``, and the L2 penalty.

Reference implementations (they allocate); the training step in ``engine.nn.fast`` computes
the same quantities into preallocated buffers. Both classification losses are the mean over
the batch and are stable for scores of any size.
"""

from __future__ import annotations

import numpy as np


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy for C classes.

    scores (N, C), y (N,) int labels in 0..C-1 -> loss (mean over N), dscores (N, C).
    Shifting every row by its maximum and using log-sum-exp keeps it finite for any scores.
    """
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)  # (N, C), max 0 in each row
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
    log_probs = shifted - lse
    rows = np.arange(n)
    loss = -float(log_probs[rows, y].mean())
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    return loss, dscores


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores (N, C), shifted by the row maximum."""
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy on one logit per example.

    logits (N,) or (N, 1), y (N,) in {0, 1} -> loss (mean over N), dlogits shaped like logits.
    With s = 1 - 2y the per-example loss is softplus(s * z) = logaddexp(0, s * z), which never
    overflows; its derivative is s * sigmoid(s * z) = sigmoid(z) - y.
    """
    z = logits.reshape(-1)
    n = z.shape[0]
    sign = (1 - 2 * np.asarray(y)).astype(z.dtype)  # +1 for class 0, -1 for class 1
    u = sign * z
    loss = float(np.logaddexp(0, u).mean())
    dz = sign * np.exp(u - np.logaddexp(0, u)) / n  # sign * sigmoid(u) / N
    return loss, dz.reshape(logits.shape)


def l2_penalty(
    params: dict[str, np.ndarray], l2: float
) -> tuple[float, dict[str, np.ndarray]]:
    """0.5 * l2 * sum of squared weights, over the weight matrices ``W*`` only.

    Returns the penalty and its gradient ``l2 * W`` for every ``W*`` key (nothing for biases,
    gamma or beta).
    """
    loss = 0.0
    grads = {}
    for name, W in params.items():
        if name.startswith("W"):
            loss += 0.5 * l2 * float(np.sum(W * W))
            grads[name] = l2 * W
    return loss, grads
