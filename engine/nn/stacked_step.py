"""The stacked training step: P members' forward, loss, backward and update as one computation.

A ``StackWorkspace`` is the stacked counterpart of ``fast.Workspace``: buffers preallocated for
P members and a batch of n rows each, products as one ``np.matmul`` with ``out=`` over the
population axis, per-member knobs as rows broadcast along the batch. In steady state a step
allocates no array memory.

Layout. Activations are stored batch-major, (n, P, H): row r of every member side by side, so
a per-member vector (a bias, a batch-norm mean, a dropout scale) is one contiguous (P, H) row
broadcast over n rows (NumPy's fast case), and a sum over the batch is a reduction over the
first axis (or one BLAS gemv). ``np.matmul`` sees the transposed views (P, n, H), whose
slices are ordinary strided matrices for BLAS. Weights are (P, D, H) views into the arena.

Padding. Members narrower than the stack keep their padded units exactly zero: their weights,
biases, gamma and beta are zero, so the unit's affine output is 0, its activation 0 (ReLU,
leaky ReLU, tanh; sigmoid's 0.5 is masked back to 0), its outgoing weights get a zero
gradient (their input is 0) and its incoming ones too (the gradient reaching it comes through
zero outgoing weights); every update rule maps a zero gradient with zero slots to no change.

Each member draws its own dropout masks from its own generator, in the solo order (per layer,
per step, the uniform draws of an (n, h) array); a member without dropout draws nothing.
"""

from __future__ import annotations

import numpy as np

from engine.nn.layers import BN_EPS, LEAKY_SLOPE
from engine.nn.stacked_arena import StackArena
from engine.nn.stacked_optim import FULL_WIDTH, Hyper, update

matmul, multiply, add, subtract = np.matmul, np.multiply, np.add, np.subtract
# from this many activations (n P H) a layer sums its batch-norm products over the batch with
# einsum in one pass, below with a product and a gemv (one BLAS thread, float32: 2^16 2.7 vs
# 3.7 us for 16 x 16 x 64 rows; 2^17 20.5 vs 17.6; 2^18 51 vs 40; 2^20 163 vs 130)
EINSUM_ELEMENTS = 1 << 17


def colsum(ones: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """out = the sum of x (n, P, H) (contiguous) over its first axis, as one BLAS gemv with a
    vector of n ones (several times faster than ``add.reduce`` along the batch)."""
    np.dot(ones, x.reshape(x.shape[0], -1), out=out.reshape(-1))


def matmul_transposed(a: np.ndarray, w: np.ndarray, wt: np.ndarray, out: np.ndarray) -> None:
    """out = a @ w^T for stacks (P, ., .), w's transpose first copied into the contiguous
    ``wt``: np.matmul over a stack of transposed views is 1.5x (16x16) to 2.3x (10x64) slower
    than over its copy (one BLAS thread)."""
    np.copyto(wt, w.transpose(0, 2, 1))
    matmul(a, wt, out)


def _t(a: np.ndarray) -> np.ndarray:
    """(n, P, H) -> the (P, n, H) view np.matmul works on."""
    return a.transpose(1, 0, 2)


class StackLayer:
    """Hidden layer ``i`` (from 1) of the stack for batches of ``n`` rows."""

    def __init__(self, arena: StackArena, i: int, n: int, training: bool) -> None:
        spec, p = arena.spec, arena.p
        dt = spec.dtype
        d_out = spec.hidden[i - 1]
        self.i, self.n = i, n
        self.bn, self.activation = spec.batch_norm, spec.activation
        self.W, self.dW = arena.params[f"W{i}"], arena.grads[f"W{i}"]
        self.mask = arena.unit_masks[i - 1].reshape(p, d_out) if arena.padded else None
        self.widths = [s.hidden[i - 1] for s in arena.specs]
        row = (p, d_out)
        new_row = lambda: np.empty(row, dt)  # noqa: E731
        if self.bn:
            self.gamma, self.beta = arena.params[f"gamma{i}"], arena.params[f"beta{i}"]
            self.dgamma_v, self.dbeta_v = arena.grads[f"gamma{i}"], arena.grads[f"beta{i}"]
            self.mu_v, self.var_v = arena.stats[f"running_mean{i}"], arena.stats[f"running_var{i}"]
            self.running_mean = arena.buffers[f"running_mean{i}"]
            self.running_var = arena.buffers[f"running_var{i}"]
            self.mu, self.var, self.inv_std, self.k, self.k_n = (new_row() for _ in range(5))
            self.c1, self.c2, self.beta_c = new_row(), new_row(), new_row()
            self.dgamma, self.dbeta = new_row(), new_row()
        else:
            self.b_v, self.db_v = arena.params[f"b{i}"], arena.grads[f"b{i}"]
            self.b_c, self.db = new_row(), new_row()
        shape = (n, p, d_out)
        self.h = np.empty(shape, dt)
        self.y = self.a = np.empty(shape, dt)
        self.deriv = np.empty(shape, dt)
        self.flag = np.empty(shape, bool)
        self.eps, self.inv_n = np.array(BN_EPS, dt), np.array(1.0 / n, dt)
        self.einsum = n * p * d_out >= EINSUM_ELEMENTS
        self.zero, self.minus_half = np.zeros((), dt), np.array(-0.5, dt)
        self.out = self.a
        self.any_drop = False
        if training:
            self.tmp = np.empty(shape, dt)
            self.da = self.dh = np.empty(shape, dt)
            self.u = np.ones(shape, dt)  # uniform draws (1.0, kept, for members without)
            self.drop = np.empty(shape, dt)
            self.dropped = np.empty(shape, dt)
            self.ones_n = np.ones(n, dt)
            # W transposed, contiguous, for dx (a layer after the first; matmul_transposed)
            self.WT = np.empty(self.W.transpose(0, 2, 1).shape, dt) if i > 1 else None

    def set_dropout(self, p_drop: np.ndarray, rngs: list) -> None:
        """Member j drops units with probability p_drop[j] (P,), drawn from rngs[j]."""
        dt = self.a.dtype
        p, width = self.a.shape[1], self.a.shape[2]
        self.p_row = np.repeat(np.asarray(p_drop, dt).reshape(p, 1), width, axis=1)
        scales = np.array([dt.type(1.0 / (1.0 - q)) for q in p_drop], dt)
        self.keep_row = np.repeat(scales.reshape(p, 1), width, axis=1)
        self.drawers = [
            (rng, np.empty((self.n, self.widths[j]), dt), self.u[:, j, : self.widths[j]])
            for j, (q, rng) in enumerate(zip(p_drop, rngs)) if q > 0
        ]
        self.any_drop = bool(self.drawers)
        self.out = self.dropped if self.any_drop else self.a

    def batch_sum_of_products(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        """out (P, H) = the sum over the batch of a * b (n, P, H): one einsum pass on layers
        of ``EINSUM_ELEMENTS`` or more, else a product into ``tmp`` and a gemv."""
        if self.einsum:
            np.einsum("nph,nph->ph", a, b, out=out)
        else:
            multiply(a, b, self.tmp)
            colsum(self.ones_n, self.tmp, out)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """x (n, P, d_in) (or (n, d_in) shared by every member) -> output (n, P, d_out)."""
        h, y = self.h, self.y
        xt = _t(x) if x.ndim == 3 else x
        if not self.bn:
            matmul(xt, self.W, _t(y))
            np.copyto(self.b_c, self.b_v)
            add(y, self.b_c, y)
        elif training:
            matmul(xt, self.W, _t(h))
            mu, var, inv_std, k = self.mu, self.var, self.inv_std, self.k
            colsum(self.ones_n, h, mu)
            multiply(mu, self.inv_n, mu)
            subtract(h, mu, h)  # xc
            self.batch_sum_of_products(h, h, var)
            multiply(var, self.inv_n, var)
            np.copyto(self.mu_v, mu)
            np.copyto(self.var_v, var)
            add(var, self.eps, inv_std)
            np.power(inv_std, self.minus_half, inv_std)
            multiply(inv_std, self.gamma, k)
            multiply(h, k, y)
            np.copyto(self.beta_c, self.beta)
            add(y, self.beta_c, y)
        else:
            matmul(xt, self.W, _t(h))
            k, shift = self.k, self.k_n
            add(self.running_var, self.eps, k)
            np.power(k, self.minus_half, k)
            multiply(k, self.gamma, k)
            multiply(self.running_mean, k, shift)
            subtract(self.beta, shift, shift)
            multiply(h, k, y)
            add(y, shift, y)
        act = self.activation
        if act == "relu":
            np.greater(y, self.zero, out=self.deriv, casting="unsafe")
            multiply(y, self.deriv, self.a)
        elif act == "leaky_relu":
            np.greater(y, self.zero, self.flag)
            np.copyto(self.deriv, LEAKY_SLOPE)
            np.copyto(self.deriv, 1, where=self.flag)
            multiply(y, self.deriv, self.a)
        elif act == "tanh":
            np.tanh(y, self.a)
        else:
            multiply(y, 0.5, self.a)
            np.tanh(self.a, self.a)
            add(self.a, 1, self.a)
            multiply(self.a, 0.5, self.a)
            if self.mask is not None:
                multiply(self.a, self.mask, self.a)
        if not (training and self.any_drop):
            return self.a
        for rng, draws, corner in self.drawers:  # the solo draws: an (n, h) array each
            rng.random(out=draws, dtype=draws.dtype)
            np.copyto(corner, draws)
        np.greater_equal(self.u, self.p_row, self.flag)
        multiply(self.flag, self.keep_row, self.drop)
        multiply(self.a, self.drop, self.dropped)
        return self.dropped

    def backward(self, x: np.ndarray, dx: np.ndarray | None) -> None:
        """From self.da (n, P, d_out) to the gradients, and into dx (n, P, d_in) unless None;
        x is the layer's (training) input (n, P, d_in)."""
        da, dy, tmp = self.da, self.dh, self.tmp
        if self.any_drop:
            multiply(da, self.drop, da)
        act = self.activation
        if act in ("relu", "leaky_relu"):
            multiply(da, self.deriv, dy)
        else:
            a = self.a
            if act == "tanh":
                multiply(a, a, tmp)
                subtract(1, tmp, tmp)
            else:
                subtract(1, a, tmp)
                multiply(tmp, a, tmp)
            multiply(da, tmp, dy)
            if self.mask is not None:
                multiply(dy, self.mask, dy)
        if self.bn:
            xc, k, k_n, c1, c2 = self.h, self.k, self.k_n, self.c1, self.c2
            inv_std, dgamma, dbeta = self.inv_std, self.dgamma, self.dbeta
            colsum(self.ones_n, dy, dbeta)
            self.batch_sum_of_products(dy, xc, dgamma)
            multiply(dgamma, inv_std, dgamma)
            multiply(k, self.inv_n, k_n)
            multiply(dbeta, k_n, c1)
            multiply(dgamma, inv_std, c2)
            multiply(c2, k_n, c2)
            multiply(xc, c2, tmp)
            multiply(dy, k, dy)
            subtract(dy, tmp, dy)
            subtract(dy, c1, dy)
            np.copyto(self.dgamma_v, dgamma)
            np.copyto(self.dbeta_v, dbeta)
        else:
            colsum(self.ones_n, dy, self.db)
            np.copyto(self.db_v, self.db)
        dyt = _t(dy)
        matmul(_t(x).transpose(0, 2, 1), dyt, self.dW)
        if dx is not None:
            matmul_transposed(dyt, self.W, self.WT, _t(dx))


class StackWorkspace:
    """Buffers and the step of a stack for batches of ``n`` rows per member."""

    def __init__(self, arena: StackArena, n: int, *, training: bool = False) -> None:
        spec, p = arena.spec, arena.p
        dt = spec.dtype
        self.arena, self.n, self.p = arena, n, p
        self.n_classes, c = spec.n_classes, spec.n_outputs
        self.hidden = [StackLayer(arena, i, n, training) for i in range(1, len(spec.hidden) + 1)]
        self.has_bn = bool(self.hidden) and spec.batch_norm
        L = spec.n_layers
        self.W, self.dW = arena.params[f"W{L}"], arena.grads[f"W{L}"]
        # one output unit (two classes): the products with its weights as one broadcast row
        self.w_row = np.empty((p, self.W.shape[1]), dt) if c == 1 else None
        self.WT = np.empty(self.W.transpose(0, 2, 1).shape, dt) if training and c > 1 else None
        self.b_v, self.db_v = arena.params[f"b{L}"], arena.grads[f"b{L}"]
        self.b_c, self.db = np.empty((p, c), dt), np.empty((p, c), dt)
        self.x = np.empty((n, p, spec.n_inputs), dt)
        self.s, self.ds, self.e = (np.empty((n, p, c), dt) for _ in range(3))
        self.col, self.col2, self.col3, self.col4 = (np.empty((n, p, 1), dt) for _ in range(4))
        self.ones_c = np.ones(c, dt)
        self.flag, self.flag2 = np.empty((n, p, 1), bool), np.empty((n, p, 1), bool)
        self.loss, self.loss_tmp = np.empty(p, dt), np.empty(p, dt)
        self.zero, self.inv_n = np.zeros((), dt), np.array(1.0 / n, dt)
        self.ones_n = np.ones(n, dt)
        if self.has_bn:
            self.stats_scratch = np.empty_like(arena.batch_stats)

    def configure(self, hyper: Hyper, dropout: np.ndarray, bn_momentum: np.ndarray,
                  rngs: list) -> None:
        """Bind the members' knobs (Hyper, dropout (P,), BN momentum (P,)) and generators."""
        self.hyper = hyper
        dt = self.arena.w.dtype
        # g += l2 w over each member's weight matrices (the first n_weights entries of its
        # row): on narrow rows with L2 as a full (P, S) matrix (0 after the weights), one
        # contiguous product; on rows of FULL_WIDTH or more with the (P, 1) column over the
        # weights' columns, which reads one array less (64 x 4874, case (b): 66 -> 55 us)
        arena, nw = self.arena, self.arena.n_weights
        if arena.w.shape[1] >= FULL_WIDTH:
            self.l2_terms = (arena.w[:, :nw], hyper.l2, arena.scratch[:, :nw], arena.g[:, :nw])
        else:
            self.l2_terms = (arena.w, hyper.l2_matrix(nw, arena.w.shape), arena.scratch, arena.g)
        hyper.widen(self.arena.w.shape)
        self.bn_keep = np.asarray(bn_momentum, dt).reshape(-1, 1)
        self.bn_new = (1.0 - np.asarray(bn_momentum, np.float64)).astype(dt).reshape(-1, 1)
        for layer in self.hidden:
            layer.set_dropout(dropout, rngs)

    def gather(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """X[rows] into the batch buffer: rows (n, P) indices -> (n, P, D)."""
        return np.take(X, rows, 0, self.x, "clip")

    def _forward(self, x: np.ndarray, training: bool) -> None:
        inp = x
        for layer in self.hidden:
            inp = layer.forward(inp, training)
        matmul(_t(inp) if inp.ndim == 3 else inp, self.W, _t(self.s))
        np.copyto(self.b_c, self.b_v)
        add(self.s, self.b_c, self.s)

    def _loss(self, target: np.ndarray, before: np.ndarray | None, mark: np.ndarray,
              want_grad: bool) -> np.ndarray:
        """Per-member sum over the batch of the data loss of self.s (into self.loss); dscores
        of the mean loss into self.ds; True into mark (n, P) where the prediction (the first
        maximum, as ``predict``) is right. target (n, P, C) one-hot or (n, P, 1) the sign
        1 - 2y; before (n, P, C) 1.0 for the classes below the true one (``before_table``);
        either may have 1 for P (shared by every member)."""
        s, e, ds, col, col2, col3 = self.s, self.e, self.ds, self.col, self.col2, self.col3
        mark3 = mark.reshape(col.shape)
        if self.n_classes == 2:  # loss softplus(u), u = (1 - 2y) z; dz = sign sigmoid(u) / n
            np.greater(s, self.zero, self.flag)
            np.less(target, self.zero, self.flag2)
            np.equal(self.flag, self.flag2, out=mark3)
            multiply(s, target, e)
            # softplus(u) = max(u, 0) + log1p(exp(-|u|)), |u| = |z|: what logaddexp(0, u)
            # computes, in SIMD loops (logaddexp's scalar one cost 1.5x these six here)
            np.abs(s, col2)
            np.negative(col2, col2)
            np.exp(col2, col2)
            np.log1p(col2, col2)
            np.maximum(e, self.zero, out=col)
            add(col, col2, col)
            colsum(self.ones_n, col, self.loss)
            if want_grad:
                subtract(e, col, ds)
                np.exp(ds, ds)
                multiply(ds, target, ds)
                multiply(ds, self.inv_n, ds)
            return self.loss
        # the row maximum class by class (a reduction along a short last axis is slow), then
        # row sums as one gemv; right where the true class's shifted score is the maximum (0)
        m = col.reshape(col.shape[:2])
        np.copyto(m, s[:, :, 0])
        for j in range(1, s.shape[2]):
            np.maximum(m, s[:, :, j], out=m)
        subtract(s, col, s)  # shifted scores, max 0 in each row
        np.exp(s, e)
        n_rows = s.shape[0] * s.shape[1]
        np.dot(e.reshape(n_rows, -1), self.ones_c, col.reshape(n_rows))  # row sums
        np.log(col, col2)
        multiply(s, target, ds)
        np.dot(ds.reshape(n_rows, -1), self.ones_c, col3.reshape(n_rows))  # true class's score
        # right: the true class is at the maximum and no class below it is (ties go first)
        np.equal(s, self.zero, out=ds, casting="unsafe")
        multiply(ds, before, ds)
        np.dot(ds.reshape(n_rows, -1), self.ones_c, self.col4.reshape(n_rows))
        np.greater_equal(col3, self.zero, self.flag)
        np.equal(self.col4, self.zero, self.flag2)
        np.logical_and(self.flag, self.flag2, mark3)
        # loss = sum of log-sum-exp - sum of the true class's shifted score
        colsum(self.ones_n, col2, self.loss)
        colsum(self.ones_n, col3, self.loss_tmp)
        subtract(self.loss, self.loss_tmp, self.loss)
        if want_grad:  # (softmax - target) / n
            np.divide(self.inv_n, col, col)
            multiply(e, col, ds)
            multiply(target, self.inv_n, e)
            subtract(ds, e, ds)
        return self.loss

    def loss_and_grads(self, x: np.ndarray, target: np.ndarray, before: np.ndarray | None,
                       mark: np.ndarray) -> np.ndarray:
        """Training-mode forward and backward; returns each member's mean data loss (P,)."""
        self._forward(x, True)
        loss = self._loss(target, before, mark, True)
        multiply(loss, self.inv_n, loss)
        ds, hidden = self.ds, self.hidden
        dst = _t(ds)
        inp = hidden[-1].out if hidden else x
        matmul(_t(inp).transpose(0, 2, 1), dst, self.dW)
        colsum(self.ones_n, ds, self.db)
        np.copyto(self.db_v, self.db)
        if hidden:
            if self.w_row is not None:  # one output unit: dx is an outer product
                np.copyto(self.w_row, self.W[:, :, 0])
                # as einsum's outer-product loop: bitwise the broadcast product, 1.5x faster
                np.einsum("np,ph->nph", ds.reshape(ds.shape[:2]), self.w_row,
                          out=hidden[-1].da)
            else:
                matmul_transposed(dst, self.W, self.WT, _t(hidden[-1].da))
            for j in range(len(hidden) - 1, 0, -1):
                hidden[j].backward(hidden[j - 1].out, hidden[j - 1].da)
            hidden[0].backward(x, None)
        return loss

    def step(self, x: np.ndarray, target: np.ndarray, before: np.ndarray | None,
             mark: np.ndarray) -> np.ndarray:
        """One step of every member: forward, backward, L2, update, running averages.
        Returns the members' mean data losses (P,) before the update."""
        loss = self.loss_and_grads(x, target, before, mark)
        arena, hyper = self.arena, self.hyper
        if hyper.any_l2:  # g += l2 w on the weight matrices
            w, l2, scratch, g = self.l2_terms
            multiply(w, l2, scratch)
            add(g, scratch, g)
        arena.step += 1
        hyper.for_step(arena.step)
        update(arena.w, arena.g, arena.slots, hyper, arena.scratch)
        if self.has_bn:
            multiply(arena.running, self.bn_keep, arena.running)
            multiply(arena.batch_stats, self.bn_new, self.stats_scratch)
            add(arena.running, self.stats_scratch, arena.running)
        return loss

    def evaluate(self, x: np.ndarray, target: np.ndarray, before: np.ndarray | None,
                 mark: np.ndarray) -> np.ndarray:
        """Evaluation mode; x (n, D) shared by every member. Returns the per-member sum of
        the data loss (P,); mark (n, P) True where right. target, before (n, 1, C)."""
        self._forward(x, False)
        return self._loss(target, before, mark, False)


def before_table(n_classes: int, y: np.ndarray, dtype: str) -> np.ndarray | None:
    """(N, C) 1.0 where the class is below the example's label (None for two classes)."""
    if n_classes == 2:
        return None
    return (np.arange(n_classes) < np.asarray(y)[:, None]).astype(dtype)
