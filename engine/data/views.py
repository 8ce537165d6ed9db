"""Read-only views of a Dataset for the UI: a summary, original coordinates, a boundary grid."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data.dataset import Dataset
from engine.data.spec import CLASS_COUNT_KINDS, DatasetSpec

MAX_GRID_RESOLUTION = 1000


def display_name(spec: DatasetSpec) -> str:
    """spec.name, or a short description such as "moons (500 samples, noise 0.1)"."""
    if spec.name:
        return spec.name
    if spec.kind == "digits":
        return "digits (8x8 images)"
    if spec.kind == "csv":
        return f"csv upload {spec.csv_sha256[:8]} (label {spec.label_column!r})"
    parts = [f"{spec.n_samples} samples"]
    if spec.kind == "synthetic":
        parts.append(f"{spec.n_features} features")
    if spec.kind in CLASS_COUNT_KINDS:
        parts.append(f"{spec.n_classes} classes")
    return f"{spec.kind} ({', '.join(parts)}, noise {spec.noise:g})"


def describe(dataset: Dataset) -> dict[str, Any]:
    """Sizes, feature and class names, class counts per part: JSON-ready, for the UI."""
    c = dataset.n_classes
    return {
        "name": display_name(dataset.spec),
        "kind": dataset.spec.kind,
        "n_train": int(len(dataset.y_train)),
        "n_val": int(len(dataset.y_val)),
        "n_features": int(dataset.X_train.shape[1]),
        "n_classes": int(c),
        "feature_names": list(dataset.feature_names),
        "class_names": list(dataset.class_names),
        "class_counts_train": np.bincount(dataset.y_train, minlength=c).tolist(),
        "class_counts_val": np.bincount(dataset.y_val, minlength=c).tolist(),
        "standardized": dataset.scaler_mean is not None,
    }


def original_coordinates(dataset: Dataset, X: np.ndarray) -> np.ndarray:
    """Map model inputs X (N, D) back to the units of the data: X * std + mean (float64)."""
    X = np.asarray(X, dtype=np.float64)
    if dataset.scaler_mean is None:
        return X.copy()
    return X * dataset.scaler_std + dataset.scaler_mean


def model_coordinates(dataset: Dataset, X: np.ndarray) -> np.ndarray:
    """Map points X (N, D) in the units of the data to model inputs (float32)."""
    X = np.asarray(X, dtype=np.float64)
    if dataset.scaler_mean is not None:
        X = (X - dataset.scaler_mean) / dataset.scaler_std
    return X.astype(np.float32)


def grid_for_boundary(
    dataset: Dataset, resolution: int = 200, margin: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid over a 2-D dataset for drawing decision boundaries.

    Returns xx, yy (resolution, resolution) float64 in original coordinates, covering all points
    (training and validation) plus `margin` times the range on each side, and X_grid
    (resolution**2, 2) float32: the same points as model inputs (standardised like the data), in
    row-major order of xx, so `predict(X_grid).reshape(xx.shape)` lines up with xx and yy.
    """
    if dataset.X_train.shape[1] != 2:
        raise ValueError(
            f"grid_for_boundary needs a 2-D dataset; {dataset.spec.kind!r} has "
            f"{dataset.X_train.shape[1]} features"
        )
    if isinstance(resolution, bool) or not 2 <= int(resolution) <= MAX_GRID_RESOLUTION:
        raise ValueError(f"resolution must be in [2, {MAX_GRID_RESOLUTION}]; got {resolution}")
    if not 0 <= margin <= 10:
        raise ValueError(f"margin must be in [0, 10]; got {margin}")
    points = original_coordinates(dataset, np.concatenate([dataset.X_train, dataset.X_val]))
    low, high = points.min(axis=0), points.max(axis=0)  # (2,)
    pad = np.where(high > low, margin * (high - low), 0.5)
    low, high = low - pad, high + pad
    xx, yy = np.meshgrid(
        np.linspace(low[0], high[0], int(resolution)), np.linspace(low[1], high[1], int(resolution))
    )
    X_grid = model_coordinates(dataset, np.column_stack([xx.ravel(), yy.ravel()]))
    return xx, yy, X_grid
