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
    """Sum of squares in float64 (float32 squares of exploding values would overflow)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    return float(np.dot(a, a))


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
        scores, caches, _ = forward(spec, params, buffers, X, training=True)
        _, dscores = data_loss(spec, scores, y)
        grads = backward(spec, dscores, caches)
        if spec.batch_norm:  # without batch norm (and dropout off) both modes agree
            scores, _, _ = forward(spec, params, buffers, X, training=False)
        proba = scores_to_proba(spec, scores)  # (N, C) evaluation mode
        _layer_health(spec, params, buffers, prev_params, caches, grads, out)
        out["grad_norm"] = _plain(math.sqrt(sum(_sq(g) for g in grads.values())))
        top = proba.max(axis=1)  # (N,)
        wrong = proba.argmax(axis=1) != y
        out["max_prob"] = _plain(top.mean())
        out["confident_wrong"] = _plain(np.mean((top >= CONFIDENT) & wrong))
    return out


def _layer_health(
    spec: ModelSpec,
    params: Arrays,
    buffers: Arrays,
    prev_params: Arrays | None,
    caches: list,
    grads: Arrays,
    out: dict,
) -> None:
    """Per-layer values into ``out``, from the caches of a training-mode ``model.forward``
    (hidden layer i: ``(c_aff, c_bn, c_act, c_drop)``, c_aff = (input, W, has_bias), a ReLU's
    c_act = its input; the output layer: c_aff)."""
    n_hidden = len(spec.hidden)
    delta_sq = prev_sq = 0.0
    dead_units = relu_units = 0
    for i in range(1, spec.n_layers + 1):
        W = params[f"W{i}"]
        c_aff = caches[i - 1][0] if i <= n_hidden else caches[-1]
        z = c_aff[0] @ W  # (N, H) the affine output
        if f"b{i}" in params:
            z = z + params[f"b{i}"]
        w_sq = _sq(W)
        out[health_key("grad_norm", i)] = _plain(math.sqrt(_sq(grads[f"W{i}"])))
        out[health_key("weight_norm", i)] = _plain(math.sqrt(w_sq))
        mean = float(np.add.reduce(z, axis=None)) / z.size
        mean_sq = _sq(z) / z.size
        out[health_key("pre_mean", i)] = _plain(mean)
        out[health_key("pre_std", i)] = _plain(math.sqrt(max(mean_sq - mean * mean, 0.0)))
        ratio = None
        if prev_params is not None:
            d_sq, p_sq = _sq(W - prev_params[f"W{i}"]), _sq(prev_params[f"W{i}"])
            delta_sq, prev_sq = delta_sq + d_sq, prev_sq + p_sq
            ratio = _ratio(_plain(math.sqrt(d_sq)), _plain(math.sqrt(p_sq)))
        out[health_key("update_ratio", i)] = ratio
        if i > n_hidden:
            continue
        if spec.activation in RELU_LIKE:
            act_input = caches[i - 1][2]  # (N, H)
            dead = np.all(act_input <= 0, axis=0)  # (H,)
            dead_units += int(dead.sum())
            relu_units += dead.size
            out[health_key("dead", i)] = _plain(dead.mean())
        else:
            out[health_key("dead", i)] = None
        if spec.batch_norm:
            _bn_health(z, buffers[f"running_mean{i}"], buffers[f"running_var{i}"], i, out)
    out["update_ratio"] = (
        None if prev_params is None
        else _ratio(_plain(math.sqrt(delta_sq)), _plain(math.sqrt(prev_sq)))
    )
    out["dead"] = _plain(dead_units / relu_units) if relu_units else None


def _bn_health(
    z: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray, i: int, out: dict
) -> None:
    """Batch statistics of z (N, H) against the running averages (H,) of layer i."""
    n = z.shape[0]
    mu = np.add.reduce(z, axis=0) / n  # (H,)
    zc = z - mu
    var = np.add.reduce(zc * zc, axis=0) / n  # (H,) biased, as batch norm uses
    eps = layers.BN_EPS
    shift = np.abs(mu - running_mean) / np.sqrt(running_var + eps)
    log_ratio = np.abs(np.log((var + eps) / (running_var + eps)))
    out[health_key("bn_shift", i)] = _plain(np.add.reduce(shift) / shift.size)
    out[health_key("bn_var_ratio", i)] = _plain(np.exp(np.add.reduce(log_ratio) / log_ratio.size))


class Cadence:
    """Which epochs of a segment measure health: ``every`` k > 0 (epoch numbers that are
    multiples of k), 0 (never) or ``AUTO``.

    ``AUTO`` measures the segment's first and last epochs, and in between any epoch once the
    training time since the last measurement reaches the last measurement's cost divided by
    ``HEALTH_SHARE``: health then costs about that share of the training (two measurements
    per segment besides; a one-epoch segment, as babysitting runs, measures every epoch).
    Which middle epochs are measured depends on timing; the training never does.
    """

    def __init__(self, every: int | str, n_epochs: int) -> None:
        self.every, self.n_epochs = every, n_epochs
        self.cost: float | None = None  # seconds the last measurement took
        self.since = 0.0  # training seconds since the last measurement
        self.last_epoch_seconds = 0.0

    def due(self, done: int, epoch: int) -> bool:
        """Whether the epoch about to run (the segment's ``done``-th, numbered ``epoch``)
        is measured."""
        if self.every == AUTO:
            if done == 0 or done == self.n_epochs - 1 or self.cost is None:
                return True
            return self.since + self.last_epoch_seconds >= self.cost / HEALTH_SHARE
        return bool(self.every) and epoch % int(self.every) == 0

    def trained(self, seconds: float) -> None:
        """An epoch's training took ``seconds`` (health not included)."""
        self.since += seconds
        self.last_epoch_seconds = seconds

    def measured(self, seconds: float) -> None:
        """A measurement took ``seconds``."""
        self.cost, self.since = seconds, 0.0


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
