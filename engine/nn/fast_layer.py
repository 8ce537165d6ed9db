"""One hidden layer of the allocation-free step: affine -> [batch norm] -> activation ->
[dropout], computed with ``out=`` arguments into buffers preallocated for N rows.

The numerics are those of the reference pairs in ``layers``, rearranged to save passes:

- column sums and means are products with a row of ones (faster than ``add.reduce``), and a
  vector is added to every row by a BLAS rank-one update (``blas.RowAdder``);
- batch norm centres the affine output in place (``xc``) and scales it by k = gamma inv_std,
  so x_hat = xc inv_std is never stored; the backward folds inv_std into per-feature factors:
  dh = k (dy - mean(dy)) - xc inv_std k mean(dy x_hat);
- ReLU and leaky ReLU keep their derivative as a float mask (1/0 and 1/0.01), so forward and
  backward are one product each.

Positional ``out`` arguments are used on purpose: they are measurably cheaper per call, and so
are scalars held as 0-d arrays of the layer's dtype (a Python float is converted on every call:
about 0.3 us, as much as the whole product on a tiny layer).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from engine.nn.arena import Arena
from engine.nn.blas import RowAdder
from engine.nn.layers import BN_EPS, LEAKY_SLOPE

dot, multiply, add, subtract = np.dot, np.multiply, np.add, np.subtract
greater, copyto = np.greater, np.copyto


def row_update(a: np.ndarray, alpha: float) -> Callable[[np.ndarray], None]:
    """A function v -> (a += alpha v on every row of a), v contiguous (D,), a (N, D) fixed:
    BLAS ``ger`` bound to a (``blas.RowAdder``), without a Python frame per call."""
    adder = RowAdder(a)
    if adder.ger is None:
        return adder.add if alpha == 1 else adder.subtract
    bound = partial(adder.ger, float(alpha), a=adder.a_T, overwrite_a=1)
    ones = adder.ones
    return lambda v: bound(v, ones)


class HiddenLayer:
    """Layer ``i`` (from 1) of ``arena``'s model for batches of ``n`` rows.

    Training buffers (gradients, dropout) exist only when ``training``; an evaluation-only
    layer needs the forward buffers alone.
    """

    def __init__(
        self, arena: Arena, i: int, n: int, d_in: int, d_out: int, *, training: bool
    ) -> None:
        spec = arena.spec
        dt = spec.dtype
        self.n = n
        self.bn = spec.batch_norm
        self.activation = spec.activation
        self.W, self.dW = arena.params[f"W{i}"], arena.grads[f"W{i}"]
        self.WT = self.W.T
        self.zero, self.eps = np.zeros((), dt), np.array(BN_EPS, dt)
        self.minus_half, self.inv_n = np.array(-0.5, dt), np.array(1.0 / n, dt)
        row, shape = (1, d_out), (n, d_out)
        if self.bn:
            self.gamma = arena.params[f"gamma{i}"].reshape(row)  # (1, D): no broadcasting
            self.beta = arena.params[f"beta{i}"]  # (D,), as the row update takes it
            self.beta_row = self.beta.reshape(row)
            self.dgamma = arena.grads[f"gamma{i}"].reshape(row)
            self.dbeta = arena.grads[f"beta{i}"].reshape(row)
            self.mu_1d = arena.stats[f"running_mean{i}"]  # batch mean
            self.mu = self.mu_1d.reshape(row)
            self.var = arena.stats[f"running_var{i}"].reshape(row)  # batch variance
            self.running_mean = arena.buffers[f"running_mean{i}"].reshape(row)
            self.running_var = arena.buffers[f"running_var{i}"].reshape(row)
            self.inv_std, self.c1, self.c2 = (np.empty(row, dt) for _ in range(3))
            self.k = np.empty(row, dt)  # gamma inv_std (evaluation: the scale)
            self.k_n = np.empty(row, dt)  # gamma inv_std / N (evaluation: the shift)
        else:
            self.b, self.db = arena.params[f"b{i}"], arena.grads[f"b{i}"].reshape(row)
        self.h = np.empty(shape, dt)  # affine output (centred in place with batch norm)
        # the activation runs in place: its input y becomes its output a (one buffer fewer to
        # keep in cache; the backward needs only a and the derivative)
        self.y = self.a = np.empty(shape, dt)
        self.deriv = np.empty(shape, dt)  # ReLU / leaky ReLU derivative
        self.flag = np.empty(shape, bool)
        self.p_drop = 0.0
        self.out = self.a  # what the next layer reads in training mode
        if training:
            self.mean_row = np.full((1, n), 1.0 / n, dt)  # row @ h = column means
            self.ones_row = np.ones((1, n), dt)  # row @ h = column sums
            self.tmp = np.empty(shape, dt)
            # gradient w.r.t. this layer's output, then (in place) w.r.t. its affine output
            self.da = self.dh = np.empty(shape, dt)
            self.u = np.empty(shape, dt)  # dropout's uniform draws
            self.drop = np.empty(shape, dt)  # dropout's scaled mask
            self.dropped = np.empty(shape, dt)  # the output after dropout
            self.h_minus = row_update(self.h, -1.0)  # h -= v on every row
            self.y_plus = row_update(self.y, 1.0)
            self.dh_minus = row_update(self.dh, -1.0)
            if self.bn:
                self.c1_1d = self.c1.reshape(-1)

    def set_dropout(self, p_drop: float, rng: np.random.Generator | None) -> None:
        """Drop units with probability ``p_drop`` (drawn from ``rng``) in training mode."""
        self.p_drop, self.rng = p_drop, rng
        self.keep_scale = np.dtype(self.a.dtype).type(1.0 / (1.0 - p_drop))
        self.out = self.dropped if p_drop > 0 else self.a

    # -- forward -------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """x (N, d_in) -> the layer's output (N, d_out): ``self.out`` in training mode."""
        h, y = self.h, self.y
        if not self.bn:
            dot(x, self.W, y)
            if training:
                self.y_plus(self.b)
            else:
                add(y, self.b, y)
        elif training:
            dot(x, self.W, h)
            mu, var, inv_std, k, tmp = self.mu, self.var, self.inv_std, self.k, self.tmp
            dot(self.mean_row, h, mu)
            self.h_minus(self.mu_1d)  # xc
            multiply(h, h, tmp)
            dot(self.mean_row, tmp, var)  # biased variance
            add(var, self.eps, inv_std)
            np.power(inv_std, self.minus_half, inv_std)
            multiply(inv_std, self.gamma, k)
            multiply(h, k, y)  # gamma x_hat
            self.y_plus(self.beta)
        else:  # y = h k + shift, k = gamma / sqrt(rv + eps), shift = beta - running_mean k
            dot(x, self.W, h)
            k, shift = self.k, self.k_n
            add(self.running_var, self.eps, k)
            np.power(k, self.minus_half, k)
            multiply(k, self.gamma, k)
            multiply(self.running_mean, k, shift)
            subtract(self.beta_row, shift, shift)
            multiply(h, k, y)
            add(y, shift, y)
        act = self.activation
        if act == "relu":
            greater(y, self.zero, out=self.deriv, casting="unsafe")  # 1.0 where y > 0, else 0
            multiply(y, self.deriv, self.a)
        else:
            self._activate(act)
        if not (training and self.p_drop > 0):
            return self.a
        # the same draws as layers.dropout_mask: keep where u >= p, scale by 1/(1-p)
        self.rng.random(out=self.u, dtype=self.u.dtype)
        np.greater_equal(self.u, self.p_drop, self.flag)
        multiply(self.flag, self.keep_scale, self.drop)
        multiply(self.a, self.drop, self.dropped)
        return self.dropped

    def _activate(self, act: str) -> None:
        """The activations other than ReLU, in place (self.y is self.a)."""
        y, a, deriv = self.y, self.a, self.deriv
        if act == "leaky_relu":
            greater(y, self.zero, self.flag)
            copyto(deriv, LEAKY_SLOPE)
            copyto(deriv, 1, where=self.flag)
            multiply(y, deriv, a)
        elif act == "tanh":
            np.tanh(y, a)
        else:  # sigmoid = 0.5 * (1 + tanh(y / 2))
            multiply(y, 0.5, a)
            np.tanh(a, a)
            add(a, 1, a)
            multiply(a, 0.5, a)

    # -- backward ------------------------------------------------------------------------
    def backward(self, x_T: np.ndarray, dx: np.ndarray | None) -> None:
        """From self.da (N, d_out) to the parameter gradients and, unless dx is None, the
        gradient w.r.t. the input written into dx (N, d_in). x_T is the input transposed."""
        da, dy, tmp = self.da, self.dh, self.tmp
        if self.p_drop > 0:
            multiply(da, self.drop, da)
        act = self.activation
        if act == "relu" or act == "leaky_relu":
            multiply(da, self.deriv, dy)
        else:
            a = self.a
            if act == "tanh":  # 1 - a^2
                multiply(a, a, tmp)
                subtract(1, tmp, tmp)
            else:  # a (1 - a)
                subtract(1, a, tmp)
                multiply(tmp, a, tmp)
            multiply(da, tmp, dy)
        if self.bn:
            # dbeta = sum(dy), dgamma = sum(dy x_hat) = inv_std sum(dy xc), and
            # dh = k (dy - mean(dy)) - xc inv_std k mean(dy x_hat), computed in dy
            xc, k, k_n, c1, c2 = self.h, self.k, self.k_n, self.c1, self.c2
            inv_std, dgamma, dbeta = self.inv_std, self.dgamma, self.dbeta
            dot(self.ones_row, dy, dbeta)
            multiply(dy, xc, tmp)
            dot(self.ones_row, tmp, dgamma)
            multiply(dgamma, inv_std, dgamma)
            multiply(k, self.inv_n, k_n)
            multiply(dbeta, k_n, c1)  # k mean(dy)
            multiply(dgamma, inv_std, c2)
            multiply(c2, k_n, c2)  # inv_std k mean(dy x_hat)
            multiply(xc, c2, tmp)
            multiply(dy, k, dy)
            subtract(dy, tmp, dy)
            self.dh_minus(self.c1_1d)
        else:
            dot(self.ones_row, dy, self.db)
        dot(x_T, dy, self.dW)
        if dx is not None:
            dot(dy, self.WT, dx)
