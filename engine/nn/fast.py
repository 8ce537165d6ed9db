"""The allocation-free training step: a workspace of preallocated buffers per batch size.

A ``Workspace`` holds every activation and gradient buffer for one (model, batch size) and runs
forward, loss, backward and the update with ``out=`` arguments into those buffers; parameters,
gradients and optimizer slots live in an ``Arena`` (flat vectors), the hidden layers are
``fast_layer.HiddenLayer``. In steady state a step allocates no array memory; it computes what
the reference ``model.loss_and_grads`` computes (tested to float tolerance).

The loss uses per-example targets prepared once a segment (``make_targets``): a one-hot row
for softmax, the sign s = 1 - 2y for the single sigmoid unit (loss softplus(s z), stable for any
z). It writes 1.0 into ``mark`` for each example whose prediction is right (the argmax, ties to
the first class, exactly as ``predict``), from which accuracy is counted once an epoch
(``count_correct``).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas as scipy_blas

from engine.nn.arena import Arena
from engine.nn.blas import axpy
from engine.nn.config import TrainConfig
from engine.nn.fast_layer import HiddenLayer, row_update
from engine.nn.optim import RULES, settle

_AXPY = {np.dtype(np.float32): scipy_blas.saxpy, np.dtype(np.float64): scipy_blas.daxpy}
dot, multiply, add, subtract = np.dot, np.multiply, np.add, np.subtract
exp, log, greater = np.exp, np.log, np.greater


def make_targets(n_classes: int, y: np.ndarray, dtype: str) -> np.ndarray:
    """Per-example loss targets: one-hot (N, C) for C > 2, the sign 1 - 2y (N, 1) for 2."""
    y = np.asarray(y)
    if n_classes == 2:
        return (1 - 2 * y).astype(dtype).reshape(-1, 1)
    return np.eye(n_classes, dtype=dtype)[y]


def count_correct(mark: np.ndarray) -> int:
    """Correct predictions among the ``mark`` values the loss wrote (1.0 where right)."""
    return int(np.count_nonzero(mark))


class Workspace:
    """Buffers and the step for one arena and a batch of ``n`` rows.

    A ``training`` workspace, once ``configure``d, runs ``loss_and_grads``/``step``; any
    workspace can ``evaluate`` (evaluation mode). Reconfiguring (a new learning-rate schedule,
    optimizer hyperparameters, dropout rate, generator) allocates nothing. The update rule may
    leave decays owed in the optimizer slots (``optim.settle``): ``settle`` before reading them.
    """

    def __init__(
        self,
        arena: Arena,
        n: int,
        *,
        training: bool = False,
        config: TrainConfig | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        spec = arena.spec
        dt = spec.dtype
        self.arena = arena
        self.n = n
        self.n_classes = spec.n_classes
        sizes = (spec.n_inputs, *spec.hidden, spec.n_outputs)
        training = training or config is not None
        self.hidden = [
            HiddenLayer(arena, i, n, sizes[i - 1], sizes[i], training=training)
            for i in range(1, len(spec.hidden) + 1)
        ]
        self.has_bn = bool(self.hidden) and spec.batch_norm
        L, c = spec.n_layers, spec.n_outputs
        self.W, self.b = arena.params[f"W{L}"], arena.params[f"b{L}"]
        self.WT = self.W.T
        self.dW, self.db = arena.grads[f"W{L}"], arena.grads[f"b{L}"].reshape(1, c)
        self.x = np.empty((n, spec.n_inputs), dt)  # the batch, gathered by ``gather``
        self.ones_row = np.ones((1, n), dt)
        self.ones_col = np.ones((c, 1), dt)
        self.inv_n = 1.0 / n
        self.inv_n0, self.zero = np.array(1.0 / n, dt), np.zeros((), dt)  # 0-d: cheaper
        self.s, self.ds, self.e = (np.empty((n, c), dt) for _ in range(3))  # scores, ...
        self.s_flat, self.ds_flat = self.s.reshape(-1), self.ds.reshape(-1)
        self.axpy = _AXPY.get(np.dtype(dt))  # BLAS y += a x on flat vectors
        self.s_plus = row_update(self.s, 1.0)
        self.col, self.col2, self.col3 = (np.empty((n, 1), dt) for _ in range(3))
        self.col_flat, self.col3_flat = self.col.reshape(-1), self.col3.reshape(-1)
        self.ones_n = np.ones(n, dt)
        self.mark = np.empty((n, 1), dt)  # for evaluate
        self.flag, self.flag2 = np.empty((n, 1), bool), np.empty((n, 1), bool)
        self.pred = np.empty(n, np.intp)
        self.row_base = np.arange(n, dtype=np.intp) * c  # flat index of each row's start
        k = arena.n_weights  # L2 touches the weight matrices: the first k entries
        self.w_weights, self.g_weights = arena.w[:k], arena.g[:k]
        self.scratch_weights = arena.scratch[:k]
        self.training = training
        self.config: TrainConfig | None = None
        if config is not None:  # shorthand for training=True and configure(config, rng)
            self.configure(config, rng)

    def configure(self, config: TrainConfig, rng: np.random.Generator | None) -> None:
        """Bind the training hyperparameters and the generator that draws dropout masks."""
        if not self.training:
            raise ValueError("only a workspace built with training=True can be configured")
        if config.dropout > 0 and rng is None:
            raise ValueError(f"dropout={config.dropout} needs a generator (rng)")
        if config.optimizer != self.arena.optimizer:
            raise ValueError(
                f"config.optimizer is {config.optimizer!r} but the arena holds "
                f"{self.arena.optimizer!r} slots"
            )
        self.config = config
        self.rule = RULES[config.optimizer]
        self.l2 = config.l2
        dt = self.arena.w.dtype
        self.bn_keep, self.bn_new = np.array(config.bn_momentum, dt), 1.0 - config.bn_momentum
        for layer in self.hidden:
            layer.set_dropout(config.dropout, rng)
        # each hidden layer's training output transposed: the next layer's x_T in the backward
        self.out_T = [layer.out.T for layer in self.hidden]

    def gather(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Copy X[rows] into the workspace's batch buffer (n rows) and return it."""
        return np.take(X, rows, 0, self.x, "clip")  # "raise" would buffer (allocate)

    def _forward(self, x: np.ndarray, training: bool) -> None:
        inp = x
        for layer in self.hidden:
            inp = layer.forward(inp, training)
        dot(inp, self.W, self.s)
        self.s_plus(self.b)

    def _loss(self, target: np.ndarray, mark: np.ndarray, want_grad: bool) -> float:
        """Sum over the batch of the loss of self.s; dscores (of the mean loss) into self.ds;
        1.0 into ``mark`` (N, 1) where the prediction (argmax, as ``predict``) is right."""
        s, e, ds, col, col2 = self.s, self.e, self.ds, self.col, self.col2
        if self.n_classes == 2:  # loss = softplus(u), u = (1 - 2y) z; dz = sign sigmoid(u) / N
            zero = self.zero
            greater(s, zero, self.flag)  # predicts class 1 (p > 0.5)
            np.less(target, zero, self.flag2)  # is class 1
            np.equal(self.flag, self.flag2, out=mark, casting="unsafe")
            multiply(s, target, e)  # u
            np.logaddexp(zero, e, col)
            total = float(dot(self.col_flat, self.ones_n))
            if want_grad:
                subtract(e, col, ds)
                exp(ds, ds)
                multiply(ds, target, ds)
                multiply(ds, self.inv_n0, ds)
            return total
        # the argmax of each row (the first maximum, as predict): right where the one-hot
        # target is 1 there; the score there is the row's maximum (max.reduce along rows of
        # a few classes is several times slower than argmax and a take)
        pred, t_flat = self.pred, target.reshape(-1)
        np.argmax(s, axis=1, out=pred)
        add(pred, self.row_base, pred)
        np.take(t_flat, pred, 0, mark.reshape(-1), "clip")
        np.take(self.s_flat, pred, 0, self.col_flat, "clip")
        subtract(s, col, s)  # shifted scores, max 0 in each row
        exp(s, e)
        dot(e, self.ones_col, col)  # row sums
        # loss = sum of log-sum-exp - sum of the true class's shifted score (both terms >= 0)
        log(col, self.col3)
        total = float(dot(self.col3_flat, self.ones_n)) - float(dot(self.s_flat, t_flat))
        if want_grad:  # (softmax - target) / N
            np.divide(self.inv_n0, col, col2)
            multiply(e, col2, ds)
            if self.axpy is not None and target.flags.c_contiguous and target.dtype == ds.dtype:
                self.axpy(t_flat, self.ds_flat, a=-self.inv_n)  # ds -= target / N
            else:
                multiply(target, self.inv_n, e)
                subtract(ds, e, ds)
        return total

    def loss_and_grads(self, x: np.ndarray, target: np.ndarray, mark: np.ndarray) -> float:
        """Training-mode forward and backward of a batch; returns the mean data loss.

        x (N, D) inputs, target from ``make_targets`` (N, C) or (N, 1), mark (N, 1) written by
        the loss. Gradients land in ``arena.g`` (without the L2 term).
        """
        self._forward(x, True)
        loss = self._loss(target, mark, True) * self.inv_n
        ds, hidden = self.ds, self.hidden
        if hidden:
            dot(self.out_T[-1], ds, self.dW)
            dot(self.ones_row, ds, self.db)
            dot(ds, self.WT, hidden[-1].da)
            for j in range(len(hidden) - 1, 0, -1):
                hidden[j].backward(self.out_T[j - 1], hidden[j - 1].da)
            hidden[0].backward(x.T, None)
        else:
            dot(x.T, ds, self.dW)
            dot(self.ones_row, ds, self.db)
        return loss

    def step(self, x: np.ndarray, target: np.ndarray, mark: np.ndarray, lr: float) -> float:
        """One training step: forward, backward, L2, the update rule, running averages.

        Returns the batch's mean data loss (computed before the update).
        """
        loss = self.loss_and_grads(x, target, mark)
        arena = self.arena
        if self.l2 > 0:
            multiply(self.w_weights, self.l2, self.scratch_weights)
            add(self.g_weights, self.scratch_weights, self.g_weights)
        arena.step += 1
        arena.lag = self.rule(
            arena.w, arena.g, arena.slots, lr, arena.step, self.config, arena.scratch, arena.lag
        )
        if self.has_bn:  # running = momentum running + (1 - momentum) batch statistic
            multiply(arena.running, self.bn_keep, arena.running)
            axpy(self.bn_new, arena.batch_stats, arena.running)
        return loss

    def settle(self) -> None:
        """Apply the decays the update rule deferred (``optim.settle``): the arena's slots then
        hold their textbook values, as a checkpoint needs."""
        arena = self.arena
        settle(arena.optimizer, arena.slots, arena.lag, self.config)
        arena.lag = 0

    def evaluate(self, x: np.ndarray, target: np.ndarray) -> tuple[float, int]:
        """Evaluation mode on N rows: (sum of the data loss, number of correct predictions)."""
        self._forward(x, False)
        total = self._loss(target, self.mark, False)
        return total, count_correct(self.mark)
