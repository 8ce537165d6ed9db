"""Dataset and build_dataset: from a DatasetSpec to split, standardised arrays, deterministically.

The spec's seed drives everything through one `np.random.SeedSequence`: one child stream
generates the data, another draws the split, so the same spec gives the same arrays, bit for bit,
in any process. Standardisation is fitted on the training part only, and the mean and std it used
are kept so that the UI can map points back to the original coordinates. The arrays of a Dataset
are read-only: datasets are cached per process and shared between training runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.csv_parse import CSVError, csv_sha256, decode_csv_bytes, parse_csv
from engine.data.digits import CLASS_NAMES as DIGIT_CLASS_NAMES
from engine.data.digits import FEATURE_NAMES as DIGIT_FEATURE_NAMES
from engine.data.digits import load_digits
from engine.data.spec import TOY_KINDS, DatasetSpec
from engine.data.split import apply_standardizer, fit_standardizer, stratified_split
from engine.data.synthetic import make_synthetic
from engine.data.toy import MULTICLASS_TOYS, make_toy


@dataclass(frozen=True, eq=False)
class Dataset:
    """A built dataset: training and validation arrays plus what the UI needs to label them.

    X_train (N, D) float32, y_train (N,) int64 in 0..C-1; the same for X_val, y_val.
    scaler_mean, scaler_std (D,) float64 are what standardisation subtracted and divided by
    (None when spec.standardize is false): original = X * scaler_std + scaler_mean.
    """

    spec: DatasetSpec
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    scaler_mean: np.ndarray | None
    scaler_std: np.ndarray | None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    def __repr__(self) -> str:
        return (
            f"Dataset(kind={self.spec.kind!r}, train={self.X_train.shape}, "
            f"val={self.X_val.shape}, n_classes={self.n_classes})"
        )


def _generate(
    spec: DatasetSpec, csv_text: str | bytes | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """All rows of the set before the split: X (N, D), y (N,), feature and class names."""
    if spec.kind != "csv" and csv_text is not None:
        raise ValueError(f"csv_text is only used with kind 'csv'; got kind={spec.kind!r}")
    if spec.kind in TOY_KINDS:
        X, y = make_toy(spec.kind, spec.n_samples, spec.noise, spec.n_classes, rng)
        n_classes = spec.n_classes if spec.kind in MULTICLASS_TOYS else 2
        return X, y, ("x1", "x2"), tuple(str(k) for k in range(n_classes))
    if spec.kind == "digits":
        X, y = load_digits()
        return X, y, DIGIT_FEATURE_NAMES, DIGIT_CLASS_NAMES
    if spec.kind == "synthetic":
        X, y = make_synthetic(spec.n_samples, spec.n_features, spec.n_classes, spec.noise, rng)
        features = tuple(f"f{j + 1}" for j in range(spec.n_features))
        return X, y, features, tuple(str(k) for k in range(spec.n_classes))
    # kind == "csv" (the spec admits no other kind)
    if csv_text is None:
        raise ValueError("kind 'csv' needs csv_text: the uploaded text whose hash is csv_sha256")
    if isinstance(csv_text, bytes):
        csv_text = decode_csv_bytes(csv_text)
    actual = csv_sha256(csv_text)
    if actual != spec.csv_sha256:
        raise CSVError(
            f"the CSV text does not match the spec: its sha256 is {actual[:12]}..., the spec "
            f"expects {spec.csv_sha256[:12]}... (the stored upload changed or another file was "
            "passed)"
        )
    return parse_csv(csv_text, spec.label_column)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def build_dataset(
    spec: DatasetSpec | dict[str, Any], csv_text: str | bytes | None = None
) -> Dataset:
    """Build the dataset a spec describes; the same spec always gives the same arrays.

    kind "csv" needs csv_text (the upload, str or UTF-8 bytes) whose sha256 is spec.csv_sha256.
    Raises ValueError (CSVError for CSV problems) with a message naming what is wrong.
    """
    if isinstance(spec, dict):
        spec = DatasetSpec.from_dict(spec)
    data_seq, split_seq = np.random.SeedSequence(spec.seed).spawn(2)
    X, y, feature_names, class_names = _generate(spec, csv_text, np.random.default_rng(data_seq))
    try:
        train_idx, val_idx = stratified_split(
            y, spec.val_fraction, np.random.default_rng(split_seq), class_names
        )
    except ValueError as e:
        raise (CSVError(str(e)) if spec.kind == "csv" else e) from None

    X_train, X_val = X[train_idx], X[val_idx]  # fresh copies
    mean = std = None
    if spec.standardize:
        mean, std = fit_standardizer(X_train)
        X_train = apply_standardizer(X_train, mean, std, copy=False)
        X_val = apply_standardizer(X_val, mean, std, copy=False)
    else:
        X_train = X_train.astype(np.float32, copy=False)
        X_val = X_val.astype(np.float32, copy=False)
    return Dataset(
        spec=spec,
        X_train=_read_only(X_train),
        y_train=_read_only(y[train_idx]),
        X_val=_read_only(X_val),
        y_val=_read_only(y[val_idx]),
        n_classes=len(class_names),
        feature_names=tuple(feature_names),
        class_names=tuple(class_names),
        scaler_mean=None if mean is None else _read_only(mean),
        scaler_std=None if std is None else _read_only(std),
    )
