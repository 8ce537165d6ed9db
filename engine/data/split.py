"""Stratified train/validation split and standardisation fitted on the training part only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A feature whose training std is below this (relative to its mean, or absolute below 1) is taken
# as constant: it is centred but not scaled, instead of blowing round-off up to unit variance.
_CONSTANT_STD = 1e-10
_CHUNK_ROWS = 4096


def stratified_split(
    y: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    class_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices so that every class has at least one row in each part.

    y (N,) int labels in 0..C-1. Each class of n rows puts round(val_fraction * n), clipped to
    [1, n - 1], rows into validation. Returns (train_idx, val_idx), int64, each shuffled.
    Raises ValueError naming the class when a class has fewer than 2 rows.
    """
    y = np.asarray(y)
    counts = np.bincount(y)
    train_parts, val_parts = [], []
    for c, n in enumerate(counts):
        if n < 2:
            name = class_names[c] if class_names is not None else str(c)
            raise ValueError(
                f"class {name!r} has {n} row(s): each class needs at least 2 (one for training, "
                "one for validation)"
            )
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(max(int(np.floor(val_fraction * n + 0.5)), 1), n - 1)
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    train_idx = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    val_idx = rng.permutation(np.concatenate(val_parts)).astype(np.int64)
    return train_idx, val_idx


def fit_standardizer(X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (D,) float64 of X_train (N, D); a constant feature gets std 1."""
    mean = X_train.mean(axis=0, dtype=np.float64)
    sq_dev = np.zeros_like(mean)
    for start in range(0, len(X_train), _CHUNK_ROWS):  # in blocks: no (N, D) float64 temporary
        d = X_train[start : start + _CHUNK_ROWS].astype(np.float64) - mean
        sq_dev += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(sq_dev / max(len(X_train), 1))
    constant = std <= _CONSTANT_STD * np.maximum(np.abs(mean), 1.0)
    std[constant] = 1.0
    return mean, std


def apply_standardizer(
    X: np.ndarray, mean: np.ndarray, std: np.ndarray, *, copy: bool = True
) -> np.ndarray:
    """(X - mean) / std as float32; X (N, D), mean and std (D,).

    Float32 input is scaled in float32 (large benchmark sets), in place when copy=False; anything
    else is scaled in float64 first, into a new array.
    """
    if X.dtype != np.float32:
        return ((X - mean) / std).astype(np.float32)
    out = X.copy() if copy else X
    out -= mean.astype(np.float32)
    out /= std.astype(np.float32)
    return out
