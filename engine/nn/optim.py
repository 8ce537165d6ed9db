"""Optimizers as small in-place update rules, and learning-rate decay.

The one contract every rule follows::

    rule(w, dw, slots, lr, step, config, scratch, lag=0) -> lag

- ``w``: parameters (any shape), updated in place;
- ``dw``: the gradient of the loss with respect to ``w``; the rule may overwrite it;
- ``slots``: the rule's own state, a tuple of arrays shaped like ``w`` named by
  ``SLOTS[optimizer]`` (momentum's velocity, RMSprop's cache, Adam's m and v), updated in place;
- ``lr``: this step's learning rate; ``step``: the 1-based number of this update (Adam's bias
  correction);
- ``config``: the ``TrainConfig`` (momentum, beta1, beta2 = RMSprop's decay, epsilon);
- ``scratch``: a spare array shaped like ``w``;
- ``lag``: how many updates' decays the slots still owe (see ``settle``); the rule returns
  the new lag. Only Adam defers its decays; every other rule leaves its slots exact (lag 0).

``settle(optimizer, slots, lag, config)`` applies the owed decays, after which the slots hold
their textbook values: call it before the slots are read (a checkpoint) or compared. Where it is
called must not depend on how a run was split into segments (the training loop settles at
every epoch end), so that a resumed run repeats the same roundings as an uninterrupted one.

Rules allocate nothing, and they work the same on one parameter array or on every parameter
laid end to end in one flat vector, which is how the training step calls them: once a step.
In a checkpoint a slot is stored per parameter as ``"{slot}.{param}"`` (e.g. ``"m.W1"``), beside
``"step"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg import blas as scipy_blas

from engine.nn.blas import axpy
from engine.nn.config import TrainConfig

UpdateRule = Callable[
    [np.ndarray, np.ndarray, tuple[np.ndarray, ...], float, int, TrainConfig, np.ndarray, int],
    int,
]

SLOTS: dict[str, tuple[str, ...]] = {
    "sgd": (),
    "momentum": ("velocity",),
    "rmsprop": ("cache",),
    "adam": ("m", "v"),
}

# Adam's deferred decays: the slots are stored divided by b**lag, so lag grows only while
# b**lag stays above this (the stored values then exceed the true ones by at most 2**16).
LAG_LIMIT = 2.0**-16

_AXPY = {np.dtype(np.float32): scipy_blas.saxpy, np.dtype(np.float64): scipy_blas.daxpy}


def sgd(w, dw, slots, lr, step, config, scratch, lag=0) -> int:
    """w -= lr * dw."""
    axpy(-lr, dw, w)
    return 0


def momentum(w, dw, slots, lr, step, config, scratch, lag=0) -> int:
    """velocity = momentum * velocity - lr * dw; w += velocity."""
    (velocity,) = slots
    np.multiply(velocity, config.momentum, out=velocity)
    axpy(-lr, dw, velocity)
    np.add(w, velocity, out=w)
    return 0


def rmsprop(w, dw, slots, lr, step, config, scratch, lag=0) -> int:
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
    return 0


def adam(w, dw, slots, lr, step, config, scratch, lag=0) -> int:
    """Adam with bias correction, its decays deferred.

    The update is the textbook one: m = b1 m + (1-b1) dw; v = b2 v + (1-b2) dw**2;
    w -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / c1, v_hat = v / c2, c1 = 1 - b1**step,
    c2 = 1 - b2**step. The slots hold M = m / b1**lag and V = v / b2**lag; with L = lag + 1,

        M += (1-b1) / b1**L * dw;  V += (1-b2) / b2**L * dw**2;
        w -= (lr b1**L sqrt(c2) / (c1 b2**(L/2))) * M / (sqrt(V) + eps sqrt(c2) / b2**(L/2))

    which is the same update, written so that the decays and the bias corrections are scalars:
    seven passes over the parameters instead of nine, equal up to rounding. Returns L (the
    slots settle first when b**L would fall below LAG_LIMIT; with a beta below it, the decays
    are applied at once and the lag stays 0).
    """
    m, v = slots
    b1, b2 = config.beta1, config.beta2
    c1, c2 = 1.0 - b1**step, 1.0 - b2**step
    if min(b1, b2) < LAG_LIMIT:  # nothing to defer: the textbook passes
        np.multiply(dw, dw, out=scratch)
        np.multiply(v, b2, out=v)
        axpy(1 - b2, scratch, v)
        np.multiply(m, b1, out=m)
        axpy(1 - b1, dw, m)
        np.sqrt(v, out=scratch)
        root_c2 = math.sqrt(c2)
        np.add(scratch, config.epsilon * root_c2, out=scratch)
        np.divide(m, scratch, out=scratch)
        axpy(-lr * root_c2 / c1, scratch, w)
        return 0
    n = lag + 1
    if min(b1, b2) ** n < LAG_LIMIT:
        settle_adam(slots, lag, config)
        n = 1
    d1, d2 = b1**n, b2**n
    root_c2, root_d2 = math.sqrt(c2), math.sqrt(d2)
    a_m, a_v = (1 - b1) / d1, (1 - b2) / d2
    eps = config.epsilon * root_c2 / root_d2
    step_size = -lr * d1 * root_c2 / (c1 * root_d2)
    f = _AXPY.get(w.dtype)
    if f is not None and _contiguous_like(w, dw, m, v):
        # dw is the scratch once m has it: one array fewer in cache than a separate scratch
        # (about 10 us of 180 over 235,530 float32 parameters)
        if w.ndim != 1:  # f2py would copy a 2-D array
            w, dw, m, v = (a.reshape(-1) for a in (w, dw, m, v))
        f(dw, m, a=a_m)
        np.multiply(dw, dw, out=dw)
        f(dw, v, a=a_v)
        np.sqrt(v, out=dw)
        np.add(dw, eps, out=dw)
        np.divide(m, dw, out=dw)
        f(dw, w, a=step_size)
        return n
    np.multiply(dw, dw, out=scratch)  # odd layouts: BLAS would work on copies
    axpy(a_v, scratch, v)
    axpy(a_m, dw, m)
    np.sqrt(v, out=scratch)
    np.add(scratch, eps, out=scratch)
    np.divide(m, scratch, out=scratch)
    axpy(step_size, scratch, w)
    return n


def _contiguous_like(w: np.ndarray, *others: np.ndarray) -> bool:
    """True when every array is C-contiguous and of w's dtype (BLAS then works in place)."""
    if not w.flags.c_contiguous:
        return False
    return all(a.dtype == w.dtype and a.flags.c_contiguous for a in others)


def settle_adam(slots: tuple[np.ndarray, ...], lag: int, config: TrainConfig) -> None:
    """Apply ``lag`` owed decays to Adam's slots: m *= b1**lag, v *= b2**lag."""
    if lag:
        m, v = slots
        np.multiply(m, config.beta1**lag, out=m)
        np.multiply(v, config.beta2**lag, out=v)


def settle(optimizer: str, slots: tuple[np.ndarray, ...], lag: int, config: TrainConfig) -> None:
    """Bring ``slots`` (the state of ``optimizer`` after updates that returned ``lag``) to their
    textbook values, in place."""
    if optimizer == "adam":
        settle_adam(slots, lag, config)


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
