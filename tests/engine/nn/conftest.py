"""Fixtures for engine.nn: small in-memory datasets and the per-thread trainer cache."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from engine.nn import train


@dataclass(frozen=True)
class TinyData:
    """The attributes of engine.data.Dataset that train_segment reads."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    n_classes: int


def blobs(n_train: int, n_val: int, n_features: int, n_classes: int, seed: int) -> TinyData:
    """Gaussian blobs around random centres: learnable, float32 features, int64 labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, n_features)) * 2
    n = n_train + n_val
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    X = (centres[y] + rng.standard_normal((n, n_features))).astype(np.float32)
    return TinyData(X[:n_train], y[:n_train], X[n_train:], y[n_train:], n_classes)


@pytest.fixture
def tiny_data() -> TinyData:
    """70 training rows (not a multiple of the usual batch sizes), 20 validation rows."""
    return blobs(70, 20, 5, 3, seed=7)


@pytest.fixture
def binary_data() -> TinyData:
    return blobs(45, 15, 3, 2, seed=8)


@pytest.fixture(autouse=True)
def fresh_trainer_cache():
    """Each test starts without a cached Trainer (so tests do not depend on their order) and
    runs with one BLAS thread, as train_segment does (small products crawl on a busy 2-core
    machine with two)."""
    train.clear_cache()
    with train.one_blas_thread():
        yield
    train.clear_cache()
