"""Optimizers as small in-place update rules, and learning-rate decay.

The one contract every rule follows::

    rule(w, dw, slots, lr, step, config, scratch) -> None

- ``w``: parameters (any shape), updated in place;
- ``dw``: the gradient of the loss with respect to ``w``; the rule may overwrite it;
- ``slots``: the rule's own state, a tuple of arrays shaped like ``w`` named by
  ``SLOTS[optimizer]`` (momentum's velocity, RMSprop's cache, Adam's m and v), updated in place;
- ``lr``: this step's learning rate; ``step``: the 1-based number of this update (Adam's bias
  correction);
- ``config``: the ``TrainConfig`` (momentum, beta1, beta2 = RMSprop's decay, epsilon);
- ``scratch``: a spare array shaped like ``w``.

Rules allocate nothing, and they work the same on one parameter array or on every parameter
laid end to end in one flat vector, which is how the training step calls them: once a step.
In a checkpoint a slot is stored per parameter as ``"{slot}.{param}"`` (e.g. ``"m.W1"``), beside
``"step"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.nn.blas import axpy
from engine.nn.config import TrainConfig

UpdateRule = Callable[
    [np.ndarray, np.ndarray, tuple[np.ndarray, ...], float, int, TrainConfig, np.ndarray], None
]

SLOTS: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v"),
}


def sgd(w, dw, slots, lr, step, config, scratch) -> None:
    """w -= lr * dw."""
    axpy(-lr, dw, w)


def momentum(w, dw, slots, lr, step, config, scratch) -> None:
    """velocity = momentum * velocity - lr * dw; w += velocity."""
    (velocity,) = slots
    np.multiply(velocity, config.momentum, out=velocity)
    axpy(-lr, dw, velocity)
    np.add(w, velocity, out=w)


def rmsprop(w, dw, slots, lr, step, config, scratch) -> None:
    """cache = beta2 * cache + (1 - beta2) * dw**2; w -= lr * dw / (sqrt(cache) + epsilon)."""
    (cache,) = slots
    decay = config.beta2
    np.multiply(dw, dw, out=scratch)
    np.multiply(cache, decay, out=cache)
    axpy(1 - decay, scratch, cache)
    np.sqrt(cache, out=scratch)
    np.add(scratch, config.epsilon, out=scratch)
    np.divide(dw, scratch, out=scratch)
    axpy(-lr, scratch, w)


def adam(w, dw, slots, lr, step, config, scratch) -> None:
    """Adam with bias correction.

    m = b1 m + (1-b1) dw; v = b2 v + (1-b2) dw**2; w -= lr * m_hat / (sqrt(v_hat) + eps) with
    m_hat = m / (1 - b1**step), v_hat = v / (1 - b2**step), evaluated as
    w -= (lr sqrt(c2) / c1) * m / (sqrt(v) + eps sqrt(c2)) (c1, c2 the two corrections) so that
    only scalars are corrected.
    """
    m, v = slots
    b1, b2 = config.beta1, config.beta2
    c1 = 1.0 - b1**step
    root_c2 = math.sqrt(1.0 - b2**step)
    np.multiply(dw, dw, out=scratch)
    np.multiply(v, b2, out=v)
    axpy(1 - b2, scratch, v)
    np.multiply(m, b1, out=m)
    axpy(1 - b1, dw, m)
    np.sqrt(v, out=scratch)
    np.add(scratch, config.epsilon * root_c2, out=scratch)
    np.divide(m, scratch, out=scratch)
    axpy(-lr * root_c2 / c1, scratch, w)


RULES: dict[str, UpdateRule] = {"sgd": sgd, "momentum": momentum, "rmsprop": rmsprop, "adam": adam}


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate for the epoch after ``epoch`` completed ones (0 for the first epoch).

    none: lr; inverse: lr / (1 + k epoch); exponential: lr k**epoch;
    step: lr k**(epoch // decay_every), with k = ``config.decay_rate``.
    """
    lr, k = config.learning_rate, config.decay_rate
    if config.decay == "inverse":
        return lr / (1.0 + k * epoch)
    if config.decay == "exponential":
        return lr * k**epoch
    if config.decay == "step":
        return lr * k ** (epoch // config.decay_every)
    return lr


def init_opt_state(
    params: dict[str, np.ndarray], optimizer: str
) -> dict[str, np.ndarray]:
    """Fresh optimizer state: zero slots for every parameter and ``step`` 0."""
    state = {"step": np.zeros((), np.int64)}
    for slot in SLOTS[optimizer]:
        for name, p in params.items():
            state[f"{slot}.{name}"] = np.zeros_like(p)
    return state


def opt_state_matches(
    opt_state: dict[str, np.ndarray], params: dict[str, np.ndarray], optimizer: str
) -> bool:
    """True when ``opt_state`` holds exactly the slots of ``optimizer`` for ``params``."""
    expected = {"step"} | {f"{s}.{n}" for s in SLOTS[optimizer] for n in params}
    return set(opt_state) == expected
