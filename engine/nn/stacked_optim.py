"""The update rules of ``engine.nn.optim`` for a stack of P members, each with its own
hyperparameters.

``Hyper`` holds every member's knobs as (P, 1) columns of the model's dtype (learning rate,
momentum, beta1, beta2, epsilon, L2), so a rule is a few in-place passes over the (P, S)
parameter matrix with one column broadcast along each row. The numerics are the textbook ones
the solo rules compute (Adam with its bias correction folded into the step size and epsilon,
as ``optim.adam`` without deferred decays), equal to them up to rounding; the slots are always
settled (no lag), so a stacked run stops and resumes bitwise anywhere.
"""

from __future__ import annotations

import numpy as np

from engine.nn.config import TrainConfig

FULL_WIDTH = 1024  # arenas of narrower rows hold their constant knobs as full (P, S) arrays


class Hyper:
    """Per-member optimizer knobs as (P, 1) columns; ``set_lr`` per epoch, ``for_step`` per
    step (Adam's bias corrections, which depend on each member's step count)."""

    def __init__(self, configs: list[TrainConfig], dtype: str) -> None:
        p = len(configs)

        def col(values) -> np.ndarray:
            return np.array(values, dtype).reshape(p, 1)

        self.optimizer = configs[0].optimizer
        self.momentum = col([c.momentum for c in configs])
        self.beta1 = col([c.beta1 for c in configs])
        self.beta2 = col([c.beta2 for c in configs])
        self.one_minus_b1 = col([1 - c.beta1 for c in configs])
        self.one_minus_b2 = col([1 - c.beta2 for c in configs])
        self.epsilon = col([c.epsilon for c in configs])
        self.l2 = col([c.l2 for c in configs])
        self.any_l2 = any(c.l2 > 0 for c in configs)
        self.lr = np.zeros((p, 1), dtype)  # this epoch's learning rate (0 for a member gone)
        self.neg_lr = np.zeros((p, 1), dtype)
        self.b1_64 = np.array([c.beta1 for c in configs], np.float64)
        self.b2_64 = np.array([c.beta2 for c in configs], np.float64)
        self.lr_64 = np.zeros(p, np.float64)
        self.t = np.zeros(p, np.float64)
        self.c1, self.c2 = np.zeros(p, np.float64), np.zeros(p, np.float64)
        self.step_size = self._step_size = np.zeros((p, 1), dtype)  # adam: -lr sqrt(c2) / c1
        self.eps_hat = self._eps_hat = np.zeros((p, 1), dtype)  # adam: epsilon sqrt(c2)
        self._plan: tuple | None = None
        self.eps_64 = np.array([c.epsilon for c in configs], np.float64)

    def l2_matrix(self, n_weights: int, shape: tuple[int, int]) -> np.ndarray:
        """(P, S): each member's L2 on its first ``n_weights`` entries, 0 after (built once)."""
        if getattr(self, "_l2_full", None) is None or self._l2_full.shape != shape:
            self._l2_full = np.zeros(shape, self.l2.dtype)
            self._l2_full[:, :n_weights] = self.l2
        return self._l2_full

    def widen(self, shape: tuple[int, int]) -> None:
        """On an arena of rows narrower than FULL_WIDTH, hold the constant knobs (momentum,
        betas, epsilon) as full (P, S) arrays: the update's products are then plain contiguous
        loops, where a (P, 1) column broadcast along short rows costs NumPy 2.4x as much
        (measured on (64, 337), case (a) of ``benchmarks/stacked.py``; on (64, 4874) the
        column is the faster). The same values, so the same results bitwise. Idempotent."""
        if shape[1] >= FULL_WIDTH or getattr(self, "_wide", None) == shape:
            return
        for name in ("momentum", "beta1", "beta2", "one_minus_b1", "one_minus_b2", "epsilon"):
            setattr(self, name, np.repeat(getattr(self, name)[:, :1], shape[1], axis=1))
        self._wide = shape

    def set_lr(self, lrs: np.ndarray) -> None:
        """This epoch's learning rates (P,) (float64; 0 freezes a member). Drops the plan."""
        np.copyto(self.lr_64, lrs)
        np.copyto(self.lr[:, 0], lrs, casting="unsafe")
        np.negative(self.lr, out=self.neg_lr)
        self._plan = None

    def plan(self, step: np.ndarray, n_steps: int) -> None:
        """Adam's step sizes and epsilons for the next ``n_steps`` updates of members at update
        count ``step`` (P,), as one (n_steps, P) computation (the same float64 expressions as
        ``for_step``, so the same values): ``for_step`` then takes the next row, until
        ``set_lr`` drops the plan."""
        self._plan = None
        if self.optimizer != "adam" or n_steps < 1:
            return
        t = step.astype(np.float64)[None, :] + np.arange(1, n_steps + 1)[:, None]  # (K, P)
        c1 = np.subtract(1.0, np.power(self.b1_64, t))
        c2 = np.sqrt(np.subtract(1.0, np.power(self.b2_64, t)))
        eps_hat = (self.eps_64 * c2).astype(self.eps_hat.dtype)[:, :, None]
        step_size = np.negative(np.divide(self.lr_64 * c2, c1)).astype(self.eps_hat.dtype)
        self._plan = (eps_hat, step_size[:, :, None], iter(range(n_steps)))

    def for_step(self, step: np.ndarray) -> None:
        """Adam's per-member step size and epsilon for update number ``step`` (P,) (1-based)."""
        if self.optimizer != "adam":
            return
        if self._plan is not None:  # the next row of the epoch's plan (views: no copy)
            eps_hat, step_size, rows = self._plan
            k = next(rows, None)
            if k is not None:
                self.eps_hat, self.step_size = eps_hat[k], step_size[k]
                return
            self._plan = None
        self.eps_hat, self.step_size = self._eps_hat, self._step_size
        t, c1, c2 = self.t, self.c1, self.c2
        np.copyto(t, step, casting="unsafe")
        np.power(self.b1_64, t, out=c1)
        np.subtract(1.0, c1, out=c1)
        np.power(self.b2_64, t, out=c2)
        np.subtract(1.0, c2, out=c2)
        np.sqrt(c2, out=c2)  # sqrt(c2) from here on
        np.multiply(self.eps_64, c2, out=t)
        np.copyto(self.eps_hat[:, 0], t, casting="unsafe")
        np.multiply(self.lr_64, c2, out=t)
        np.divide(t, c1, out=t)
        np.negative(t, out=t)
        np.copyto(self.step_size[:, 0], t, casting="unsafe")


def update(w: np.ndarray, g: np.ndarray, slots: tuple[np.ndarray, ...], h: Hyper,
           scratch: np.ndarray) -> None:
    """One update of every member: w, g, slots and scratch are (P, S); g may be overwritten."""
    mul, add = np.multiply, np.add
    opt = h.optimizer
    if opt == "sgd":  # w -= lr g
        mul(g, h.neg_lr, scratch)
        add(w, scratch, w)
    elif opt == "momentum":  # v = mu v - lr g; w += v
        (v,) = slots
        mul(v, h.momentum, v)
        mul(g, h.neg_lr, scratch)
        add(v, scratch, v)
        add(w, v, w)
    elif opt == "rmsprop":  # c = b2 c + (1 - b2) g^2; w -= lr g / (sqrt(c) + eps)
        (c,) = slots
        mul(g, g, scratch)
        mul(c, h.beta2, c)
        mul(scratch, h.one_minus_b2, scratch)
        add(c, scratch, c)
        np.sqrt(c, scratch)
        add(scratch, h.epsilon, scratch)
        np.divide(g, scratch, scratch)
        mul(scratch, h.neg_lr, scratch)
        add(w, scratch, w)
    else:  # adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
        # w -= (lr sqrt(c2) / c1) m / (sqrt(v) + eps sqrt(c2))
        m, v = slots
        mul(m, h.beta1, m)
        mul(g, h.one_minus_b1, scratch)
        add(m, scratch, m)
        mul(g, g, g)
        mul(v, h.beta2, v)
        mul(g, h.one_minus_b2, g)
        add(v, g, v)
        np.sqrt(v, scratch)
        add(scratch, h.eps_hat, scratch)
        np.divide(m, scratch, scratch)
        mul(scratch, h.step_size, scratch)
        add(w, scratch, w)
