"""Network health at an epoch's end: the lecture's diagnostics, measured for every trial.

``epoch_health(spec, params, buffers, X, y, prev_params=None)`` looks at one batch (the first
``HEALTH_ROWS`` rows given, normally of the validation set) with the model as it is after an
epoch, and returns a flat dict of plain floats (None where a value does not apply or is not
finite, so nothing non-finite is ever stored):

- per affine layer ``i`` (hidden layers from 1, then the output layer ``L``):
  ``grad_norm_i`` (Frobenius norm of the data-loss gradient of ``W{i}`` on the batch, training
  mode, dropout off), ``update_ratio_i`` (``|W{i} - W{i}_prev| / |W{i}_prev|``, the whole
  epoch's update; None without ``prev_params``), ``weight_norm_i``, ``pre_mean_i`` /
  ``pre_std_i`` (mean and standard deviation of the affine output, the pre-activation, over
  the batch and the units: the covariate shift the lecture talks about);
- per hidden layer: ``dead_i`` (the share of units whose activation input is <= 0 for every
  row of the batch: ReLU and leaky ReLU only, None for tanh and sigmoid) and, with batch norm,
  ``bn_shift_i`` (mean over units of |batch mean - running mean| in running standard
  deviations) and ``bn_var_ratio_i`` (exp of the mean |log(batch var / running var)|: 1 when
  they agree, 2 when they are off by a factor of two on average);
- over the model: ``grad_norm`` (all parameters), ``update_ratio`` (all weight matrices),
  ``dead`` (share of dead units over the ReLU layers), ``max_prob`` (mean over rows of the
  largest class probability, evaluation mode) and ``confident_wrong`` (share of rows predicted
  with probability >= ``CONFIDENT`` and wrong), ``rows`` (the batch size used).

The size is bounded: at most ``len(LAYER_FIELDS)`` numbers per layer plus the summary. The
inputs are plain (a spec, parameter and buffer dicts, arrays), so the stacked training path of
many small models can call it per member. Nothing here mutates its inputs; the training-mode
pass's updated running averages are thrown away.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from engine.nn import layers
from engine.nn.model import ModelSpec, backward, data_loss, forward, scores_to_proba

HEALTH_ROWS = 128  # rows of the batch health looks at (the first of the validation set)
AUTO = "auto"  # health_every: measured as often as HEALTH_SHARE of the training time allows
HEALTH_SHARE = 0.03  # "auto": health may cost at most this share of the training time
CONFIDENT = 0.99  # a prediction this sure (max probability) counts as confident
LAYER_FIELDS = (
    "grad_norm", "update_ratio", "weight_norm", "pre_mean", "pre_std", "dead", "bn_shift",
    "bn_var_ratio",
)
SUMMARY_FIELDS = ("grad_norm", "update_ratio", "dead", "max_prob", "confident_wrong", "rows")
RELU_LIKE = ("relu", "leaky_relu")

Arrays = dict[str, np.ndarray]


def health_key(field: str, layer: int) -> str:
    """The key of a per-layer value, e.g. ``health_key("grad_norm", 2) == "grad_norm_2"``."""
    return f"{field}_{layer}"


def _plain(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _sq(a: np.ndarray) -> float:
    """Sum of squares: one BLAS dot in the array's dtype, redone in float64 only when float32
    squares overflowed (exploding values) but the values themselves are finite."""
    v = a.reshape(-1)
    s = float(np.dot(v, v))
    if not math.isfinite(s) and v.dtype != np.float64 and np.isfinite(v).all():
        v = v.astype(np.float64)
        s = float(np.dot(v, v))
    return s


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return _plain(num / den)


def epoch_health(
    spec: ModelSpec,
    params: Arrays,
    buffers: Arrays,
    X: np.ndarray,
    y: np.ndarray,
    *,
    prev_params: Arrays | None = None,
) -> dict[str, float | None]:
    """The health of the model on a batch: X (N, n_inputs), y (N,) integer labels (the first
    ``HEALTH_ROWS`` rows are used); ``prev_params`` are the parameters one epoch earlier.

    Returns the flat dict described in the module docstring (plain floats or None).
    """
    X = np.asarray(X[:HEALTH_ROWS], dtype=spec.dtype)
    y = np.asarray(y[:HEALTH_ROWS])
    if X.ndim != 2 or X.shape[1] != spec.n_inputs or X.shape[0] == 0:
        raise ValueError(f"X must have shape (N >= 1, {spec.n_inputs}), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    out: dict[str, float | None] = {"rows": float(X.shape[0])}
    with np.errstate(all="ignore"):
        scores, caches, stats = _training_pass(spec, params, X)
        _, dscores = data_loss(spec, scores, y)
        grads = backward(spec, dscores, caches)
        if spec.batch_norm:  # without batch norm (and dropout off) both modes agree
            scores, _, _ = forward(spec, params, buffers, X, training=False)
        proba = scores_to_proba(spec, scores)  # (N, C) evaluation mode
        w_grad_sq = _layer_health(spec, params, buffers, prev_params, caches, stats, grads, out)
        other_sq = sum(_sq(g) for name, g in grads.items() if not name.startswith("W"))
        out["grad_norm"] = _plain(math.sqrt(w_grad_sq + other_sq))
        top = proba.max(axis=1)  # (N,)
        wrong = proba.argmax(axis=1) != y
        n = top.shape[0]
        out["max_prob"] = _plain(np.add.reduce(top) / n)
        out["confident_wrong"] = _plain(np.count_nonzero((top >= CONFIDENT) & wrong) / n)
    return out


def _training_pass(
    spec: ModelSpec, params: Arrays, X: np.ndarray
) -> tuple[np.ndarray, list, list[tuple[float, float, np.ndarray | None, np.ndarray | None]]]:
    """``model.forward(training=True)`` with dropout off, keeping what health needs of each
    affine output z (N, H): scores, caches (``model.forward``'s format, for
    ``model.backward``) and per affine layer ``(mean, mean square)`` of z over the batch and
    the units, and with batch norm z's batch mean and biased variance per unit (H,) (taken
    from the batch-norm pass itself, so z is reduced once)."""
    act_forward = layers.ACTIVATIONS[spec.activation][0]
    caches: list = []
    stats = []
    h = X
    for i in range(1, len(spec.hidden) + 1):
        if spec.batch_norm:
            z, c_aff = layers.affine_forward(h, params[f"W{i}"])
            zero = np.zeros(z.shape[1], z.dtype)
            # momentum 0 and zero running stats: the "new running" pair is the batch's own
            h, c_bn, mu, var = layers.batchnorm_forward(
                z, params[f"gamma{i}"], params[f"beta{i}"], zero, zero, momentum=0.0,
                training=True)
            mu64 = mu.astype(np.float64)
            mean = float(np.add.reduce(mu64)) / mu64.size
            # E[z^2] over batch and units = mean over units of (var + mu^2)
            mean_sq = (float(np.add.reduce(var.astype(np.float64))) + _sq(mu64)) / mu64.size
            stats.append((mean, mean_sq, mu, var))
        else:
            z, c_aff = layers.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            h, c_bn = z, None
            stats.append((float(np.add.reduce(z, axis=None)) / z.size, _sq(z) / z.size,
                          None, None))
        h, c_act = act_forward(h)
        caches.append((c_aff, c_bn, c_act, None))  # no dropout: dropout_backward passes
    L = spec.n_layers
    scores, c_out = layers.affine_forward(h, params[f"W{L}"], params[f"b{L}"])
    caches.append(c_out)
    stats.append((float(np.add.reduce(scores, axis=None)) / scores.size,
                  _sq(scores) / scores.size, None, None))
    return scores, caches, stats


def _layer_health(
    spec: ModelSpec,
    params: Arrays,
    buffers: Arrays,
    prev_params: Arrays | None,
    caches: list,
    stats: list,
    grads: Arrays,
    out: dict,
) -> float:
    """Per-layer values into ``out``, from ``_training_pass``'s caches (hidden layer i:
    ``(c_aff, c_bn, c_act, c_drop)``, a ReLU's c_act = its input) and stats; returns the sum
    of squares of the weight gradients."""
    n_hidden = len(spec.hidden)
    delta_sq = prev_sq = grad_sq = 0.0
    dead_units = relu_units = 0
    for i in range(1, spec.n_layers + 1):
        W = params[f"W{i}"]
        g_sq = _sq(grads[f"W{i}"])
        grad_sq += g_sq
        out[health_key("grad_norm", i)] = _plain(math.sqrt(g_sq))
        out[health_key("weight_norm", i)] = _plain(math.sqrt(_sq(W)))
        mean, mean_sq, mu, var = stats[i - 1]
        out[health_key("pre_mean", i)] = _plain(mean)
        out[health_key("pre_std", i)] = _plain(math.sqrt(max(mean_sq - mean * mean, 0.0)))
        ratio = None
        if prev_params is not None:
            W_prev = prev_params[f"W{i}"]
            d_sq, p_sq = _sq(W - W_prev), _sq(W_prev)
            delta_sq, prev_sq = delta_sq + d_sq, prev_sq + p_sq
            ratio = _ratio(_plain(math.sqrt(d_sq)), _plain(math.sqrt(p_sq)))
        out[health_key("update_ratio", i)] = ratio
        if i > n_hidden:
            continue
        if spec.activation in RELU_LIKE:
            act_input = caches[i - 1][2]  # (N, H)
            n_dead = act_input.shape[1] - np.count_nonzero((act_input > 0).any(axis=0))
            dead_units += n_dead
            relu_units += act_input.shape[1]
            out[health_key("dead", i)] = _plain(n_dead / act_input.shape[1])
        else:
            out[health_key("dead", i)] = None
        if spec.batch_norm:
            _bn_health(mu, var, buffers[f"running_mean{i}"], buffers[f"running_var{i}"], i, out)
    out["update_ratio"] = (
        None if prev_params is None
        else _ratio(_plain(math.sqrt(delta_sq)), _plain(math.sqrt(prev_sq)))
    )
    out["dead"] = _plain(dead_units / relu_units) if relu_units else None
    return grad_sq


def _bn_health(
    mu: np.ndarray, var: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray,
    i: int, out: dict
) -> None:
    """The batch's mean and biased variance (H,) of layer i's z against its running averages
    (H,)."""
    eps = layers.BN_EPS
    shift = np.abs(mu - running_mean) / np.sqrt(running_var + eps)
    log_ratio = np.abs(np.log((var + eps) / (running_var + eps)))
    out[health_key("bn_shift", i)] = _plain(np.add.reduce(shift) / shift.size)
    out[health_key("bn_var_ratio", i)] = _plain(np.exp(np.add.reduce(log_ratio) / log_ratio.size))


_ESTIMATES: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (cost, epoch)
ESTIMATES_KEPT = 64  # workloads whose costs a process remembers


def _power_of_two_at_least(x: float) -> int:
    k = 1
    while k < x:
        k *= 2
    return k


class Cadence:
    """Which epochs of a segment measure health: ``every`` k > 0 (epoch numbers that are
    multiples of k), 0 (never) or ``AUTO``.

    ``AUTO`` measures epoch 1 of a model (the baseline the exploding-gradient rule compares
    with), the segment's last epoch if ``last`` (the study runner asks for it when a trial
    reaches its budget or a rung; babysitting, one epoch a segment, for every epoch), and
    every epoch whose number is a multiple of ``stride()``: the smallest power of two k with
    cost / (k x epoch time) <= ``HEALTH_SHARE``, so health costs at most that share of the
    training, and the measured epochs follow the model's own epoch numbers whatever the
    segments are (a segment's length is set on the wall clock, and a loaded machine makes
    them short: measuring each segment's ends measured up to 2 in 3 epochs there). The cost
    and the epoch time are remembered per ``key`` (the workload: model, batch size, rows) in
    this process, for the next segment; unknown, the segment's first epoch is measured to
    learn them. Which epochs are measured depends on timing; the training never does.

    Times are CPU seconds of the training thread (``clock``, ``time.thread_time``): on a
    loaded machine an epoch's wall time stretches while the process waits for a core, and a
    short measurement often does not wait at all, so on the wall clock health looked several
    times cheaper than it is. ``start()`` marks the start of an epoch, ``trained()`` its
    training's end, ``measured()`` a measurement's end (each may be given the seconds).
    """

    clock = staticmethod(time.thread_time)

    def __init__(self, every: int | str, n_epochs: int, *, key: Hashable = None,
                 last: bool = False) -> None:
        self.every, self.n_epochs, self.key, self.last = every, n_epochs, key, last
        known = _ESTIMATES.get(key) if key is not None else None
        self.cost: float | None = None if known is None else known[0]  # CPU s a measurement
        self.last_epoch_seconds = 0.0 if known is None else known[1]  # CPU s an epoch
        self._mark = 0.0

    def start(self) -> None:
        """An epoch starts (its training is timed from here)."""
        self._mark = self.clock()

    def _lap(self, seconds: float | None) -> float:
        now = self.clock()
        lap = now - self._mark if seconds is None else seconds
        self._mark = now
        return lap

    def stride(self) -> int:
        """Every how many epochs ``AUTO`` measures (1 while nothing is known)."""
        if self.cost is None or self.last_epoch_seconds <= 0:
            return 1
        return _power_of_two_at_least(self.cost / (HEALTH_SHARE * self.last_epoch_seconds))

    def due(self, done: int, epoch: int) -> bool:
        """Whether the epoch about to run (the segment's ``done``-th, numbered ``epoch``)
        is measured."""
        if self.every == AUTO:
            if epoch == 1 or self.cost is None or (self.last and done == self.n_epochs - 1):
                return True
            return epoch % self.stride() == 0
        return bool(self.every) and epoch % int(self.every) == 0

    def _remember(self) -> None:
        if self.key is not None and self.cost is not None:
            _ESTIMATES[self.key] = (self.cost, self.last_epoch_seconds)
            _ESTIMATES.move_to_end(self.key)
            while len(_ESTIMATES) > ESTIMATES_KEPT:
                _ESTIMATES.popitem(last=False)

    def trained(self, seconds: float | None = None) -> None:
        """An epoch's training ended: it took ``seconds``, by default the CPU time since
        ``start()`` (health not included)."""
        self.last_epoch_seconds = self._lap(seconds)
        self._remember()

    def measured(self, seconds: float | None = None) -> None:
        """A measurement ended: it took ``seconds``, by default the CPU time since
        ``trained()``."""
        self.cost = self._lap(seconds)
        self._remember()


def check_every(name: str, value: object) -> int | str:
    """``value`` as a cadence: an integer >= 0 or ``"auto"`` (a ValueError names ``name``)."""
    if value == AUTO:
        return AUTO
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if isinstance(value, float) and value.is_integer() and value >= 0:
        value, ok = int(value), True
    if not ok:
        raise ValueError(
            f"{name} must be an integer >= 0 (0 = no health) or {AUTO!r}, got {value!r}"
        )
    return int(value)


def layer_count(health: dict) -> int:
    """How many affine layers a health dict describes (0 for an empty one)."""
    n = 0
    while health_key("grad_norm", n + 1) in health:
        n += 1
    return n
