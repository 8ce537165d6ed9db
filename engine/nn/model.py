"""The MLP: its frozen spec, parameter layout, initialisation and reference forward/backward.

Parameters and buffers are flat dicts of arrays (names in docs/CONTRACTS.md): hidden layer i
(from 1) has ``W{i}`` and either ``gamma{i}``, ``beta{i}`` plus buffers ``running_mean{i}``,
``running_var{i}`` (batch norm: no bias before it) or ``b{i}``; the output layer L has
``W{L}``, ``b{L}``. Each hidden layer is affine -> [batch norm] -> activation -> [dropout].
Two classes use one sigmoid output unit, C > 2 classes a softmax over C units.

The functions here allocate and are the reference; ``engine.nn.fast`` is the training step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.nn import layers
from engine.nn.config import as_choice, as_int, checked_kwargs
from engine.nn.init import INITS, init_weights
from engine.nn.losses import l2_penalty, sigmoid_cross_entropy, softmax, softmax_cross_entropy

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of an MLP; frozen, JSON-serialisable through ``to_dict``/``from_dict``."""

    n_inputs: int
    hidden: tuple[int, ...]  # units per hidden layer, e.g. (64, 64)
    n_classes: int  # 2 -> one sigmoid output unit; C > 2 -> softmax over C
    activation: str = "relu"  # relu | leaky_relu | tanh | sigmoid
    batch_norm: bool = True
    init: str = "he"  # he | xavier
    dtype: str = "float32"  # float32 | float64

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "n_inputs", as_int("n_inputs", self.n_inputs, minimum=1))
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ValueError(f"hidden must be a sequence of layer sizes, got {self.hidden!r}")
        put(self, "hidden", tuple(as_int("hidden units", h, minimum=1) for h in self.hidden))
        put(self, "n_classes", as_int("n_classes", self.n_classes, minimum=2))
        as_choice("activation", self.activation, tuple(layers.ACTIVATIONS))
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise ValueError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        put(self, "batch_norm", bool(self.batch_norm))
        as_choice("init", self.init, INITS)
        as_choice("dtype", self.dtype, DTYPES)

    @property
    def n_outputs(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def n_layers(self) -> int:
        """Number of affine layers (hidden layers + the output layer)."""
        return len(self.hidden) + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(**checked_kwargs(cls, d))


def param_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, in layer order."""
    sizes = (spec.n_inputs, *spec.hidden, spec.n_outputs)
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(1, spec.n_layers + 1):
        d_in, d_out = sizes[i - 1], sizes[i]
        shapes[f"W{i}"] = (d_in, d_out)
        if i < spec.n_layers and spec.batch_norm:
            shapes[f"gamma{i}"] = (d_out,)
            shapes[f"beta{i}"] = (d_out,)
        else:
            shapes[f"b{i}"] = (d_out,)
    return shapes


def buffer_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Buffer name -> shape (batch-norm running averages), in layer order."""
    shapes: dict[str, tuple[int, ...]] = {}
    if spec.batch_norm:
        for i, h in enumerate(spec.hidden, start=1):
            shapes[f"running_mean{i}"] = (h,)
            shapes[f"running_var{i}"] = (h,)
    return shapes


def init_params(
    spec: ModelSpec, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Initial (params, buffers): weights from ``spec.init``, biases and beta 0, gamma 1,
    running means 0 and running variances 1."""
    params = {}
    for name, shape in param_shapes(spec).items():
        if name.startswith("W"):
            params[name] = init_weights(spec.init, shape[0], shape[1], rng, spec.dtype)
        elif name.startswith("gamma"):
            params[name] = np.ones(shape, spec.dtype)
        else:
            params[name] = np.zeros(shape, spec.dtype)
    buffers = {
        name: (np.zeros if name.startswith("running_mean") else np.ones)(shape, spec.dtype)
        for name, shape in buffer_shapes(spec).items()
    }
    return params, buffers


def forward(
    spec: ModelSpec,
    params: dict[str, np.ndarray],
    buffers: dict[str, np.ndarray],
    X: np.ndarray,
    *,
    training: bool,
    bn_momentum: float = 0.9,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    masks: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[Any], dict[str, np.ndarray]]:
    """X (N, n_inputs) -> scores (N, n_outputs), caches, new buffers.

    ``masks`` maps a hidden-layer index (from 1) to a fixed dropout mask (for gradient checks);
    otherwise training-mode dropout draws its masks from ``rng``.
    """
    act_forward = layers.ACTIVATIONS[spec.activation][0]
    new_buffers = dict(buffers)
    caches: list[Any] = []
    h = X
    for i in range(1, len(spec.hidden) + 1):
        if spec.batch_norm:
            h, c_aff = layers.affine_forward(h, params[f"W{i}"])
            h, c_bn, new_buffers[f"running_mean{i}"], new_buffers[f"running_var{i}"] = (
                layers.batchnorm_forward(
                    h, params[f"gamma{i}"], params[f"beta{i}"], buffers[f"running_mean{i}"],
                    buffers[f"running_var{i}"], momentum=bn_momentum, training=training,
                )
            )
        else:
            h, c_aff = layers.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            c_bn = None
        h, c_act = act_forward(h)
        mask = None if masks is None else masks.get(i)
        h, c_drop = layers.dropout_forward(h, dropout, training=training, rng=rng, mask=mask)
        caches.append((c_aff, c_bn, c_act, c_drop))
    L = spec.n_layers
    scores, c_out = layers.affine_forward(h, params[f"W{L}"], params[f"b{L}"])
    caches.append(c_out)
    return scores, caches, new_buffers


def backward(
    spec: ModelSpec, dscores: np.ndarray, caches: list[Any]
) -> dict[str, np.ndarray]:
    """dscores (N, n_outputs) and the caches of a training-mode ``forward`` -> grads."""
    act_backward = layers.ACTIVATIONS[spec.activation][1]
    L = spec.n_layers
    grads = {}
    dh, grads[f"W{L}"], grads[f"b{L}"] = layers.affine_backward(dscores, caches[-1])
    for i in range(len(spec.hidden), 0, -1):
        c_aff, c_bn, c_act, c_drop = caches[i - 1]
        dh = act_backward(layers.dropout_backward(dh, c_drop), c_act)
        if spec.batch_norm:
            dh, grads[f"gamma{i}"], grads[f"beta{i}"] = layers.batchnorm_backward(dh, c_bn)
            dh, grads[f"W{i}"], _ = layers.affine_backward(dh, c_aff)
        else:
            dh, grads[f"W{i}"], grads[f"b{i}"] = layers.affine_backward(dh, c_aff)
    return grads


def data_loss(spec: ModelSpec, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of scores (N, n_outputs) against labels y (N,): (loss, dscores)."""
    if spec.n_classes == 2:
        return sigmoid_cross_entropy(scores, y)
    return softmax_cross_entropy(scores, y)


def loss_and_grads(
    spec: ModelSpec,
    params: dict[str, np.ndarray],
    buffers: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 0.0,
    bn_momentum: float = 0.9,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    masks: dict[int, np.ndarray] | None = None,
) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One training-mode pass: (data loss + L2 penalty, grads, new buffers)."""
    scores, caches, new_buffers = forward(
        spec, params, buffers, X, training=True, bn_momentum=bn_momentum, dropout=dropout,
        rng=rng, masks=masks,
    )
    loss, dscores = data_loss(spec, scores, y)
    grads = backward(spec, dscores, caches)
    if l2 > 0:
        penalty, dpen = l2_penalty(params, l2)
        loss += penalty
        for name, g in dpen.items():
            grads[name] = grads[name] + g
    return loss, grads, new_buffers


def scores_to_proba(spec: ModelSpec, scores: np.ndarray) -> np.ndarray:
    """scores (N, n_outputs) -> class probabilities (N, C); two classes give [1-p, p]."""
    if spec.n_classes == 2:
        p = layers.sigmoid(scores[:, 0])
        return np.stack([1 - p, p], axis=1)
    return softmax(scores)


def predict_proba(
    spec: ModelSpec,
    params: dict[str, np.ndarray],
    buffers: dict[str, np.ndarray],
    X: np.ndarray,
) -> np.ndarray:
    """Evaluation-mode class probabilities: X (N, n_inputs) -> (N, C)."""
    X = np.asarray(X, dtype=spec.dtype)
    scores, _, _ = forward(spec, params, buffers, X, training=False)
    return scores_to_proba(spec, scores)
