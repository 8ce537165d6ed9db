"""Model introspection for the inspector page: batch norm and softmax, seen from the inside.

Pure functions of a model (``ModelSpec``, params, buffers) and data; nothing here trains or
changes a model (training-mode passes compute batch statistics and throw the updated running
averages away; dropout is off, so the only difference between the two modes is batch norm).

- ``trace_forward``: per hidden layer, the pre-activation ``z`` (affine output), its normalised
  form ``z_hat`` and the statistics used to normalise it (batch statistics in training mode,
  the running averages in evaluation mode), plus the class probabilities.
- ``batchnorm_report``: both modes side by side and the accuracy in each.
- ``softmax_report``, ``confusion_matrix``, ``hard_max``: probabilities, the one-hot argmax and
  the confusion matrix.
- ``load_trial_model``, ``load_session_model``: a checkpoint and its dataset, ready to inspect.
- ``start_bn_experiment``, ``experiment_runs``: the same net with and without batch norm, as two
  babysitting sessions trained by their detached runners (never in the caller's process).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from engine.data import Dataset, DatasetSpec, build_dataset
from engine.nn import TrainConfig, TrainState, layers, state_from_bytes
from engine.nn.model import ModelSpec, scores_to_proba
from engine.search import trial_config
from engine.storage import blobs, studies

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class LayerTrace:
    """One hidden layer seen during a forward pass; N samples, H units."""

    layer: int  # hidden-layer index, from 1
    z: np.ndarray  # (N, H) affine output: the pre-activation before batch norm
    z_hat: np.ndarray  # (N, H) (z - mean) / sqrt(var + eps); z itself without batch norm
    mean: np.ndarray | None  # (H,) the mean used to normalise (None without batch norm)
    var: np.ndarray | None  # (H,) the variance used to normalise


@dataclass(frozen=True)
class BatchNormLayer:
    """One batch-norm layer in training mode (batch statistics) and evaluation mode."""

    layer: int
    z_train: np.ndarray  # (N, H) pre-activations in a training-mode pass
    z_hat_train: np.ndarray  # (N, H) normalised with the batch statistics
    z_eval: np.ndarray  # (N, H) pre-activations in an evaluation-mode pass
    z_hat_eval: np.ndarray  # (N, H) normalised with the running averages
    batch_mean: np.ndarray  # (H,) mean of z_train over the batch
    batch_var: np.ndarray  # (H,) biased variance of z_train over the batch
    running_mean: np.ndarray  # (H,) the model's running averages
    running_var: np.ndarray  # (H,)


@dataclass(frozen=True)
class BatchNormReport:
    layers: list[BatchNormLayer]  # empty for a model without batch norm
    train_mode_accuracy: float  # predictions with batch statistics (batches of batch_size)
    eval_mode_accuracy: float  # predictions with the running averages
    n_samples: int
    batch_size: int


@dataclass(frozen=True)
class SoftmaxReport:
    proba: np.ndarray  # (N, C) evaluation-mode class probabilities, rows sum to 1
    predicted: np.ndarray  # (N,) argmax class
    confusion: np.ndarray  # (C, C) counts, rows = true class, columns = predicted class
    accuracy: float


def _check_inputs(spec: ModelSpec, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=spec.dtype)
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise ValueError(
            f"X must have shape (N, {spec.n_inputs}) for this model, got {X.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError("X has no rows: inspect at least one sample")
    if y is not None and np.shape(y) != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {np.shape(y)}")
    return X


def trace_forward(
    spec: ModelSpec, params: Arrays, buffers: Arrays, X: np.ndarray, *, training: bool
) -> tuple[list[LayerTrace], np.ndarray]:
    """Forward X (N, n_inputs) without dropout, recording every hidden layer.

    Returns (one ``LayerTrace`` per hidden layer, class probabilities (N, C)). In training mode
    batch norm uses the statistics of X as one batch (so every layer sees inputs shaped by the
    batch statistics of the layers before it); in evaluation mode, the running averages.
    """
    X = _check_inputs(spec, X)
    act_forward = layers.ACTIVATIONS[spec.activation][0]
    traces = []
    h = X
    for i in range(1, len(spec.hidden) + 1):
        if spec.batch_norm:
            z, _ = layers.affine_forward(h, params[f"W{i}"])
            if training:
                mean, var = z.mean(axis=0), z.var(axis=0)
            else:
                mean, var = buffers[f"running_mean{i}"], buffers[f"running_var{i}"]
            z_hat = (z - mean) / np.sqrt(var + layers.BN_EPS)
            a = params[f"gamma{i}"] * z_hat + params[f"beta{i}"]
            traces.append(LayerTrace(i, z, z_hat, mean, var))
        else:
            z, _ = layers.affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            a = z
            traces.append(LayerTrace(i, z, z, None, None))
        h, _ = act_forward(a)
    L = spec.n_layers
    scores, _ = layers.affine_forward(h, params[f"W{L}"], params[f"b{L}"])
    return traces, scores_to_proba(spec, scores)


def batchnorm_report(
    spec: ModelSpec,
    params: Arrays,
    buffers: Arrays,
    X: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int | None = None,
    rng: np.random.Generator | None = None,
) -> BatchNormReport:
    """Batch norm in both modes on X (N, n_inputs) with labels y (N,).

    The per-layer distributions and batch statistics come from one training-mode pass over all
    of X. The training-mode accuracy uses batches of ``batch_size`` rows (None: all of X as one
    batch), shuffled by ``rng`` if given, as the model saw them during training.
    """
    X = _check_inputs(spec, X, y)
    n = X.shape[0]
    if batch_size is None:
        batch_size = n
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch_size = int(batch_size)
    y = np.asarray(y)
    train_traces, _ = trace_forward(spec, params, buffers, X, training=True)
    eval_traces, eval_proba = trace_forward(spec, params, buffers, X, training=False)
    bn_layers = []
    if spec.batch_norm:
        for t, e in zip(train_traces, eval_traces, strict=True):
            bn_layers.append(
                BatchNormLayer(
                    layer=t.layer, z_train=t.z, z_hat_train=t.z_hat, z_eval=e.z,
                    z_hat_eval=e.z_hat, batch_mean=t.mean, batch_var=t.var,
                    running_mean=np.asarray(buffers[f"running_mean{t.layer}"]),
                    running_var=np.asarray(buffers[f"running_var{t.layer}"]),
                )
            )
    order = rng.permutation(n) if rng is not None else np.arange(n)
    correct = 0
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        _, proba = trace_forward(spec, params, buffers, X[rows], training=True)
        correct += int((proba.argmax(axis=1) == y[rows]).sum())
    return BatchNormReport(
        layers=bn_layers,
        train_mode_accuracy=correct / n,
        eval_mode_accuracy=float((eval_proba.argmax(axis=1) == y).mean()),
        n_samples=n,
        batch_size=batch_size,
    )


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (C, C) int64: entry [i, j] = samples of true class i predicted as class j."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}"
        )
    for name, v in (("y_true", y_true), ("y_pred", y_pred)):
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(
                f"{name} must hold classes 0..{n_classes - 1}, got {v.min()}..{v.max()}"
            )
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return counts


def hard_max(proba: np.ndarray) -> np.ndarray:
    """proba (N, C) -> one-hot (N, C) of each row's argmax (the first one on ties)."""
    proba = np.asarray(proba)
    out = np.zeros_like(proba)
    out[np.arange(proba.shape[0]), proba.argmax(axis=1)] = 1
    return out


def softmax_report(
    spec: ModelSpec, params: Arrays, buffers: Arrays, X: np.ndarray, y: np.ndarray
) -> SoftmaxReport:
    """Evaluation-mode probabilities (N, C), predictions and the confusion matrix on X, y."""
    X = _check_inputs(spec, X, y)
    _, proba = trace_forward(spec, params, buffers, X, training=False)
    predicted = proba.argmax(axis=1)
    y = np.asarray(y)
    return SoftmaxReport(
        proba=proba,
        predicted=predicted,
        confusion=confusion_matrix(y, predicted, spec.n_classes),
        accuracy=float((predicted == y).mean()),
    )


# --- which model: loading a trial's or a session's checkpoint with its data ----------------------


@dataclass(frozen=True)
class Inspected:
    """A trained model to inspect, with the data it was trained on."""

    state: TrainState
    dataset: Dataset
    batch_size: int  # the training batch size (for training-mode accuracy)
    label: str  # e.g. "trial 3 of study 'moons search' (epoch 12)"


def _dataset_from_dict(conn: sqlite3.Connection, dataset: dict) -> Dataset:
    spec = DatasetSpec.from_dict(dataset)
    csv_text = blobs.get_upload(conn, spec.csv_sha256) if spec.kind == "csv" else None
    return build_dataset(spec, csv_text=csv_text)


def load_trial_model(conn: sqlite3.Connection, trial_id: int) -> Inspected:
    """A study trial's latest checkpoint and its study's dataset; LookupError if the trial has
    no checkpoint yet."""
    trial = studies.get_trial(conn, trial_id)
    study = studies.get_study(conn, trial["study_id"])
    blob = studies.trial_checkpoint(conn, trial_id)
    if blob is None:
        raise LookupError(
            f"trial {trial['number']} of study {study['name']!r} has no checkpoint yet "
            f"(state {trial['state']}): it has not finished an epoch"
        )
    state = state_from_bytes(blob)
    dataset = _dataset_from_dict(conn, study["dataset"])
    params = {**(study["space"].get("fixed") or {}), **trial["params"]}
    _, config, _ = trial_config(params, dataset.n_features, dataset.n_classes)
    return Inspected(
        state=state,
        dataset=dataset,
        batch_size=int(config["batch_size"]),
        label=f"trial {trial['number']} of study {study['name']!r} (epoch {state.epoch})",
    )


def load_session_model(
    conn: sqlite3.Connection, session_id: int, node_id: int | None = None
) -> Inspected:
    """A babysitting session's model at its head (or at ``node_id``) and its dataset."""
    from engine import babysit  # late: engine.babysit imports a lot, and not always needed

    view = babysit.session_view(conn, session_id)
    node_id = view["head_node_id"] if node_id is None else int(node_id)
    state = babysit.load_state_at(conn, node_id)
    return Inspected(
        state=state,
        dataset=babysit.session_dataset(conn, session_id),
        batch_size=int(view["config"]["batch_size"]),
        label=f"session {view['name']!r} (epoch {state.epoch})",
    )


# --- the batch-norm experiment: one net with and without batch norm, trained by runners -------

EXPERIMENT_LABELS = ("with batch norm", "without batch norm")


def start_bn_experiment(
    conn: sqlite3.Connection,
    *,
    dataset: dict,
    hidden: tuple[int, ...] = (64, 64),
    activation: str = "relu",
    config: dict | None = None,
    epochs: int = 15,
    seed: int = 0,
) -> tuple[int, int]:
    """Create two babysitting sessions that differ only in ``batch_norm`` and ask their runners
    to train ``epochs`` epochs each; return (session with BN, session without BN).

    Nothing trains in the caller's process: ``engine.babysit.send`` spawns detached runners.
    """
    from engine import babysit

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    config = dict(config or {})
    TrainConfig.from_dict(config)  # fail before creating anything
    ids = []
    for label, batch_norm in zip(EXPERIMENT_LABELS, (True, False), strict=True):
        model = {"hidden": list(hidden), "activation": activation, "batch_norm": batch_norm}
        ids.append(babysit.new_session(
            conn, name=f"BN experiment: {label}, lr {config.get('learning_rate', 1e-3):g}",
            model=model, dataset=dataset, config=config, seed=seed,
        ))
    for session_id in ids:
        babysit.send(conn, session_id, "run", epochs=epochs)
    return ids[0], ids[1]


def experiment_runs(conn: sqlite3.Connection, session_ids: tuple[int, int]) -> dict[str, dict]:
    """Label -> {"session_id", "status", "points"} (the current branch's lineage of each)."""
    from engine import babysit

    out = {}
    for label, session_id in zip(EXPERIMENT_LABELS, session_ids, strict=True):
        view = babysit.session_view(conn, session_id)
        curves = babysit.session_curves(conn, session_id)
        current = next(c for c in curves if c["current"])
        out[label] = {"session_id": session_id, "status": view["status"],
                      "message": view["message"], "points": current["points"]}
    return out
